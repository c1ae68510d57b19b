import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { Context } from 'koa';
import getRawBody from 'raw-body';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { receiveDelivery, type DeliveryDeps } from '../../commands/receive-delivery.js';
import { rememberedStates } from '../../commands/remembered-states.js';
import { deliveryFacts } from '../github/delivery-facts.js';
import { ApiError, invalidArgument, tooMany } from './errors.js';
import { answerWithPosition } from './consistency.js';
import type { Metrics } from './metrics.js';

/** GitHub's own cap on a webhook payload. */
export const MAX_WEBHOOK_BYTES = 25 * 1024 * 1024;

const guidPattern = /^[A-Za-z0-9-]{1,100}$/;
const eventPattern = /^[a-z0-9_]{1,64}$/;
const signaturePattern = /^sha256=([0-9a-f]{64})$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

export interface IngressLimits {
  /** Verified deliveries per second, all senders together (CODEXK8S_WEBHOOK_RATE_LIMIT). */
  verifiedPerSecond: number;
  /** Requests that fail a check, per second per source address (CODEXK8S_WEBHOOK_UNVERIFIED_RATE_LIMIT). */
  unverifiedPerSecondPerAddress: number;
}

/** HMAC SHA-256 over the raw bytes, compared in constant time; the index of the secret that matches, or -1. */
export function verifyingSecret(secrets: readonly Buffer[], raw: Buffer, signatureHex: string): number {
  const given = Buffer.from(signatureHex, 'hex');
  return secrets.findIndex((secret) => timingSafeEqual(createHmac('sha256', secret).update(raw).digest(), given));
}

/**
 * POST /api/v1/webhooks/github. Every header, the signature's format included, is checked before
 * the body is read; the HMAC SHA-256 is verified over the raw bytes in constant time, with the
 * current secret and then the previous ones (rotation); only then is the delivery decided and
 * recorded, and acknowledged after the commit. Two limits: verified deliveries share one bucket, so
 * nobody without the secret can spend GitHub's; requests that fail a check are counted per source
 * address, and an address over that limit gets 429 for its failures. A request that verifies is
 * never refused for its address: behind a proxy every sender may share one. A rejected request
 * leaves nothing but a counter.
 */
export function githubWebhook(options: Omit<DeliveryDeps, 'states'> & { secrets: readonly string[]; metrics: Metrics; limits: IngressLimits }) {
  const deps = { ...options, states: rememberedStates(options.store) };
  const secrets = options.secrets.map((s) => Buffer.from(s, 'utf8'));
  const verified = new RateLimiterMemory({ points: options.limits.verifiedPerSecond, duration: 1 });
  const unverified = new RateLimiterMemory({ points: options.limits.unverifiedPerSecondPerAddress, duration: 1 });

  return async (ctx: Context) => {
    const started = process.hrtime.bigint();
    const address = ctx.ip;
    // A failure answers 429 once its address is over its limit, so a flood is told to back off.
    const reject = async (error: ApiError, reason: string) => {
      deps.metrics.signatureFailures.inc({ reason });
      try {
        await unverified.consume(address);
        return error;
      } catch (over) {
        if (!(over instanceof RateLimiterRes)) throw over;
        deps.metrics.signatureFailures.inc({ reason: 'address_over_limit' });
        return tooMany(over);
      }
    };
    const guid = ctx.get('X-GitHub-Delivery');
    const event = ctx.get('X-GitHub-Event');
    const signature = signaturePattern.exec(ctx.get('X-Hub-Signature-256'))?.[1];
    if (!guidPattern.test(guid)) throw await reject(invalidArgument('missing or malformed X-GitHub-Delivery'), 'bad_headers');
    if (!eventPattern.test(event)) throw await reject(invalidArgument('missing or malformed X-GitHub-Event'), 'bad_headers');
    if (!signature) throw await reject(new ApiError(401, 'unauthorized', 'missing or malformed X-Hub-Signature-256'), 'missing_signature');
    let raw: Buffer;
    try {
      raw = await getRawBody(ctx.req, { limit: MAX_WEBHOOK_BYTES, length: ctx.get('Content-Length') || undefined });
    } catch (error) {
      const status = (error as { status?: number }).status;
      if (status === 413) throw await reject(new ApiError(413, 'invalid_argument', 'payload larger than 25 MiB'), 'too_large');
      throw await reject(invalidArgument('could not read the body'), 'bad_body');
    }
    if (raw.length === 0) throw await reject(invalidArgument('the body is empty'), 'empty_body');
    const verifiedBy = verifyingSecret(secrets, raw, signature);
    if (verifiedBy < 0) throw await reject(new ApiError(401, 'unauthorized', 'signature does not match'), 'bad_signature');
    try {
      await verified.consume('deliveries');
    } catch (error) {
      if (error instanceof RateLimiterRes) throw tooMany(error);
      throw error;
    }
    deps.metrics.verifiedBy.inc({ secret: String(verifiedBy) });
    let payload: unknown;
    try {
      // GitHub sends UTF-8 JSON; bytes that are not UTF-8 are refused, not replaced.
      payload = JSON.parse(utf8.decode(raw));
    } catch {
      deps.metrics.signatureFailures.inc({ reason: 'not_json' });
      throw invalidArgument('the body is not UTF-8 JSON');
    }
    const answer = await receiveDelivery(deps, {
      guid,
      event,
      facts: deliveryFacts(event, payload),
      bodySha256: createHash('sha256').update(raw).digest('hex'),
      receivedAt: new Date().toISOString(),
    });
    deps.metrics.deliveries.inc({ event, result: answer.status });
    deps.metrics.latency.observe({ result: answer.status }, Number(process.hrtime.bigint() - started) / 1e9);
    if (answer.status === 'duplicate') {
      ctx.status = 200;
      ctx.body = { status: 'duplicate' };
      return;
    }
    const { position, ...body } = answer;
    answerWithPosition(ctx, 202, body, position);
  };
}
