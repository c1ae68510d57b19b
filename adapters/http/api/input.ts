import { isUuid } from '../../../domain/shared/codec.js';
import * as t from 'io-ts';
import { isLeft } from 'fp-ts/lib/Either.js';
import getRawBody from 'raw-body';
import type { Context } from 'koa';
import { ApiError, invalidArgument } from '../errors.js';

/** Staff API bodies are small settings; anything larger is refused before it is parsed. */
export const MAX_BODY_BYTES = 16 * 1024;

/**
 * An object codec that refuses unknown fields (a typo is an error, not a silently ignored setting).
 * Built from its required and optional properties, which are also the allowed keys.
 */
export function strictObject<R extends t.Props, O extends t.Props>(name: string, required: R, optional: O) {
  const codec = t.intersection([t.type(required), t.partial(optional)], name);
  return { codec, keys: new Set([...Object.keys(required), ...Object.keys(optional)]) };
}
export type StrictObject<C extends t.Mixed = t.Mixed> = { codec: C; keys: Set<string> };

/** What is wrong, by path and expected type: never the value, which may be a token. */
function problems(errors: t.Errors): string[] {
  return errors.slice(0, 5).map((e) => {
    const path = e.context.map((c) => c.key).filter((k) => k !== '' && !/^\d+$/.test(k)).join('.');
    return `${path || 'body'} must be ${e.context.at(-1)?.type.name ?? 'valid'}`;
  });
}

export function decodeInput<C extends t.Mixed>(input: StrictObject<C>, value: unknown, what: string): t.TypeOf<C> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw invalidArgument(`${what} must be a JSON object`);
  const unknown = Object.keys(value).filter((k) => !input.keys.has(k));
  if (unknown.length > 0) throw invalidArgument(`${what}: unknown field ${unknown.slice(0, 3).map((k) => JSON.stringify(k.slice(0, 40))).join(', ')}`);
  const result = input.codec.decode(value);
  if (isLeft(result)) throw invalidArgument(`${what}: ${problems(result.left).join('; ')}`);
  return result.right;
}

/** The request's JSON body, capped, as `application/json`, decoded by `input`. */
export async function jsonBody<C extends t.Mixed>(ctx: Context, input: StrictObject<C>): Promise<t.TypeOf<C>> {
  if (!ctx.is('application/json')) throw new ApiError(415, 'invalid_argument', 'the body must be application/json');
  return decodeInput(input, parseJson(await rawBody(ctx)), 'body');
}

const Nothing = strictObject('nothing', {}, {});

/**
 * For a command that takes no input: no body, or `{}` (what JSON clients send for nothing). Anything
 * else is refused as a body would be, rather than ignored: a client sending fields expects them used.
 */
export async function noBody(ctx: Context): Promise<void> {
  if (!ctx.request.length && ctx.get('Transfer-Encoding') === '') return;
  if (!ctx.is('application/json')) throw new ApiError(415, 'invalid_argument', 'this endpoint takes no body; if one is sent, it must be application/json {}');
  const raw = await rawBody(ctx);
  if (raw.trim() === '') return;
  decodeInput(Nothing, parseJson(raw), 'body (this endpoint takes none)');
}

async function rawBody(ctx: Context): Promise<string> {
  try {
    return await getRawBody(ctx.req, { limit: MAX_BODY_BYTES, length: ctx.get('Content-Length') || undefined, encoding: 'utf8' });
  } catch (error) {
    if ((error as { type?: string }).type === 'entity.too.large') throw new ApiError(413, 'invalid_argument', `the body is larger than ${MAX_BODY_BYTES} bytes`);
    throw invalidArgument('the body could not be read');
  }
}

function parseJson(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    throw invalidArgument('the body is not JSON');
  }
}

/** Query parameters, each at most once, decoded like a body. */
export function queryInput<C extends t.Mixed>(ctx: Context, input: StrictObject<C>): t.TypeOf<C> {
  const query: Record<string, string> = {};
  for (const [key, value] of Object.entries(ctx.query)) {
    if (Array.isArray(value)) throw invalidArgument(`query: ${JSON.stringify(key.slice(0, 40))} is given more than once`);
    if (value !== undefined) query[key] = value;
  }
  return decodeInput(input, query, 'query');
}

/** A path parameter that must be a UUID: anything else names nothing (404), as an unknown id does. */
export function uuidParam(ctx: Context, name: string, what: string): string {
  const value = ctx.params[name] ?? '';
  if (!isUuid(value)) throw new ApiError(404, 'not_found', `${what} not found`);
  return value.toLowerCase();
}

/** A page size in a query: 1 to 200. */
export const PageLimit = new t.Type<number, string, unknown>(
  '1..200',
  (u): u is number => typeof u === 'number',
  (u, c) => (typeof u === 'string' && /^\d{1,3}$/.test(u) && Number(u) >= 1 && Number(u) <= 200 ? t.success(Number(u)) : t.failure(u, c)),
  String,
);
