import * as t from 'io-ts';
import { isLeft } from 'fp-ts/lib/Either.js';
import { PathReporter } from 'io-ts/lib/PathReporter.js';

/** Thrown when input at an edge does not match its codec; the message names the offending paths. */
export class ValidationError extends Error {
  override readonly name = 'ValidationError';
  constructor(readonly what: string, readonly problems: string[]) {
    super(`invalid ${what}: ${problems.join('; ')}`);
  }
}

/** Decodes `value` with `codec` or throws a ValidationError that says what is wrong. */
export function decodeOrThrow<C extends t.Mixed>(codec: C, value: unknown, what: string): t.TypeOf<C> {
  const result = codec.decode(value);
  if (isLeft(result)) throw new ValidationError(what, PathReporter.report(result).slice(0, 5));
  return result.right;
}

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * A string codec checked by `valid`, whose type stays `string`: deciders then build events from
 * plain command fields without casts, and the codec still refuses a malformed value at the edge.
 */
function checkedString(name: string, valid: (s: string) => boolean): t.Type<string, string, unknown> {
  return new t.Type<string, string, unknown>(
    name,
    (u): u is string => typeof u === 'string' && valid(u),
    (u, c) => (typeof u === 'string' && valid(u) ? t.success(u) : t.failure(u, c)),
    t.identity,
  );
}

/** Whether a text is a UUID (any case). */
export const isUuid = (s: string): boolean => uuidPattern.test(s);
/** An issue's or a pull request's number as GitHub gives them: whole, from 1, and within 32 bits (agent_runs keeps them as int). */
export const isSubjectNumber = (n: unknown): n is number => typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= 2_147_483_647;
export const Uuid = checkedString('Uuid', isUuid);

/** An ISO-8601 instant kept as a string, so events stay plain JSON. */
export const IsoTime = checkedString('IsoTime', (s) => !Number.isNaN(Date.parse(s)) && /^\d{4}-\d{2}-\d{2}T/.test(s));

export const NonEmptyString = t.refinement(t.string, (s) => s.length > 0 && s.length <= 1024, 'NonEmptyString');

/** No control characters: none belongs in a name or an address, and PostgreSQL refuses NUL in text. */
export const isPrintable = (s: string): boolean => !/[\u0000-\u001f\u007f]/.test(s);

/** An e-mail address as the platform takes one (the API, the CLI, the settings): local@domain, no spaces, no markup. */
export const isEmail = (s: string): boolean => s.length <= 320 && isPrintable(s) && /^[^\s@<>]{1,64}@[^\s@<>]{1,255}$/.test(s);
