import { createHash } from 'node:crypto';
import type { Context } from 'koa';
import getRawBody from 'raw-body';
import ratelimit from 'koa-ratelimit';
import { Webhooks } from '@octokit/webhooks';
import { receiveDelivery, type DeliveryDeps } from '../../commands/receive-delivery.js';
import { rememberedStates } from '../../commands/remembered-states.js';
import { deliveryFacts } from '../github/delivery-facts.js';
import { ApiError, invalidArgument } from './errors.js';
import { answerWithPosition } from './consistency.js';
import type { Metrics } from './metrics.js';

/**
 * The ingress limit: one shared window for all senders (GitHub's deliveries come from a few
 * addresses). Over it: 429 with Retry-After, before anything is read or stored.
 */
export function ingressLimit(perSecond: number) {
  return ratelimit({ driver: 'memory', db: new Map(), duration: 1000, max: perSecond, id: () => 'webhooks', throw: true, headers: { remaining: 'X-RateLimit-Remaining', reset: 'X-RateLimit-Reset', total: 'X-RateLimit-Limit' } });
}

/** GitHub's own cap on a webhook payload. */
export const MAX_WEBHOOK_BYTES = 25 * 1024 * 1024;

const guidPattern = /^[A-Za-z0-9-]{1,100}$/;
const eventPattern = /^[a-z0-9_]{1,64}$/;

/**
 * POST /api/v1/webhooks/github: verify the HMAC SHA-256 signature over the raw bytes with the
 * current secret, then the previous ones (rotation); decide and record; acknowledge only after the
 * commit. A rejected delivery leaves nothing but a counter.
 */
export function githubWebhook(options: Omit<DeliveryDeps, 'states'> & { secrets: readonly string[]; metrics: Metrics }) {
  const deps = { ...options, states: rememberedStates(options.store) };
  const verifiers = deps.secrets.map((secret) => new Webhooks({ secret }));
  return async (ctx: Context) => {
    const started = process.hrtime.bigint();
    const reject = (error: ApiError, reason: string) => {
      deps.metrics.signatureFailures.inc({ reason });
      return error;
    };
    const guid = ctx.get('X-GitHub-Delivery');
    const event = ctx.get('X-GitHub-Event');
    const signature = ctx.get('X-Hub-Signature-256');
    if (!guidPattern.test(guid)) throw reject(invalidArgument('missing or malformed X-GitHub-Delivery'), 'bad_headers');
    if (!eventPattern.test(event)) throw reject(invalidArgument('missing or malformed X-GitHub-Event'), 'bad_headers');
    let raw: Buffer;
    try {
      raw = await getRawBody(ctx.req, { limit: MAX_WEBHOOK_BYTES, length: ctx.get('Content-Length') || undefined });
    } catch (error) {
      const status = (error as { status?: number }).status;
      if (status === 413) throw reject(new ApiError(413, 'invalid_argument', 'payload larger than 25 MiB'), 'too_large');
      throw reject(invalidArgument('could not read the body'), 'bad_body');
    }
    if (!/^sha256=[0-9a-f]{64}$/.test(signature)) throw reject(new ApiError(401, 'unauthorized', 'missing or malformed X-Hub-Signature-256'), 'missing_signature');
    const text = raw.toString('utf8');
    if (text.length === 0) throw reject(invalidArgument('the body is empty'), 'empty_body');
    let verifiedBy = -1;
    for (const [i, verifier] of verifiers.entries()) {
      if (await verifier.verify(text, signature).catch(() => false)) {
        verifiedBy = i;
        break;
      }
    }
    if (verifiedBy < 0) throw reject(new ApiError(401, 'unauthorized', 'signature does not match'), 'bad_signature');
    deps.metrics.verifiedBy.inc({ secret: String(verifiedBy) });
    let payload: unknown;
    try {
      payload = JSON.parse(text);
    } catch {
      throw reject(invalidArgument('the body is not JSON'), 'not_json');
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
