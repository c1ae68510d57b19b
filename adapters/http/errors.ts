import type { Context, Next } from 'koa';
import { ValidationError } from '../../domain/shared/codec.js';
import { DomainError } from '../../domain/shared/errors.js';
import { ConcurrencyError } from '../../ports/event-store.js';
import { NoHealthyReplicaError, NotYetConsistentError } from '../postgres/replica-reads.js';
import type { Logger } from '../log.js';
import { GithubError } from '../github/directory.js';

/** A rate limit's refusal: 429, with when to try again (rate-limiter-flexible's wait, at least 1 s). */
export const tooMany = (wait: { msBeforeNext: number }, message = 'too many requests') =>
  new ApiError(429, 'unavailable', message, { 'Retry-After': String(Math.max(1, Math.ceil(wait.msBeforeNext / 1000))) });

export type ErrorCode = 'invalid_argument' | 'unauthorized' | 'forbidden' | 'not_found' | 'conflict' | 'failed_precondition' | 'unavailable' | 'internal';

/** An error the API answers as it is: its code, status and message (which must hold no secret). */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export const invalidArgument = (message: string) => new ApiError(400, 'invalid_argument', message);
export const notFound = (what: string) => new ApiError(404, 'not_found', `${what} not found`);

function toApiError(error: unknown): ApiError | undefined {
  if (error instanceof ApiError) return error;
  if (error instanceof ValidationError) return new ApiError(400, 'invalid_argument', error.message);
  if (error instanceof DomainError) {
    const status = { invalid_argument: 400, unauthorized: 401, forbidden: 403, not_found: 404, conflict: 409, failed_precondition: 412 }[error.code];
    return new ApiError(status, error.code, error.message);
  }
  if (error instanceof GithubError) {
    // Refused credentials are the caller's to change; GitHub's own failure is a bad gateway, not ours.
    if (error.kind === 'refused') return new ApiError(412, 'failed_precondition', error.message);
    if (error.kind === 'rate_limited') return new ApiError(503, 'unavailable', error.message, { 'Retry-After': '60' });
    return new ApiError(502, 'unavailable', error.message);
  }
  if (error instanceof ConcurrencyError) return new ApiError(409, 'conflict', error.message);
  if (error instanceof NotYetConsistentError) return new ApiError(503, 'unavailable', error.message, { 'Retry-After': '1' });
  if (error instanceof NoHealthyReplicaError) return new ApiError(503, 'unavailable', error.message, { 'Retry-After': '5' });
  const status = (error as { status?: unknown }).status;
  if (status === 429) {
    const headers = (error as { headers?: Record<string, string> }).headers ?? {};
    return new ApiError(429, 'unavailable', 'too many requests', { 'Retry-After': headers['Retry-After'] ?? '1' });
  }
  if (typeof status === 'number' && status >= 400 && status < 500) {
    // koa's own client errors (body too large, malformed JSON, …)
    const code: ErrorCode = status === 401 ? 'unauthorized' : status === 403 ? 'forbidden' : status === 404 ? 'not_found' : 'invalid_argument';
    return new ApiError(status, code, (error as Error).message);
  }
  return undefined;
}

/** Every failure leaves as `{error: {code, message}}`; anything unexpected is `internal`, logged, not echoed. */
export function errorModel(log: Logger) {
  return async (ctx: Context, next: Next) => {
    try {
      await next();
    } catch (error) {
      const known = toApiError(error);
      if (!known) log.error({ err: error, path: ctx.path }, 'request failed');
      const answer = known ?? new ApiError(500, 'internal', 'internal error');
      ctx.status = answer.status;
      ctx.set(answer.headers);
      ctx.body = { error: { code: answer.code, message: answer.message } };
    }
  };
}
