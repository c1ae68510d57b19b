import { isUuid } from '../../../domain/shared/codec.js';
import { invalidArgument } from '../errors.js';

/**
 * Lists page by keyset: the cursor is the sort key of the last item of the page, base64url JSON.
 * It is opaque to clients (its shape may change); a cursor that does not decode to the list's key
 * shape is refused, never passed to SQL as it came.
 */
export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

export function encodeCursor(key: readonly (string | number)[]): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

/**
 * An ISO instant that exists: the right shape, and a calendar date and time PostgreSQL takes. Date
 * rolls what does not exist over (02-30 to 03-02, 24:00 to the next day, year 0 to 1900), so an
 * instant that exists is one that reads back the same.
 */
function isInstant(part: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,6})?Z$/.exec(part);
  if (!m) return false;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  return new Date(Date.UTC(year, month - 1, day, hour, minute, second)).toISOString().slice(0, 19) === part.slice(0, 19);
}

export function decodeCursor(raw: string | undefined, shape: readonly ('string' | 'time' | 'uuid')[]): string[] | undefined {
  if (raw === undefined) return undefined;
  const bad = () => invalidArgument('cursor is not one this list gave');
  if (raw.length > 512 || !/^[A-Za-z0-9_-]+$/.test(raw)) throw bad();
  let key: unknown;
  try {
    key = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'));
  } catch {
    throw bad();
  }
  if (!Array.isArray(key) || key.length !== shape.length) throw bad();
  return key.map((part, i) => {
    if (typeof part !== 'string' || part.length > 200) throw bad();
    if (shape[i] === 'uuid' && !isUuid(part)) throw bad();
    if (shape[i] === 'time' && !isInstant(part)) throw bad();
    return part;
  });
}

/** One more row than the page asks is read: its presence says there is a next page. */
export function pageOf<R, T>(rows: R[], limit: number, view: (row: R) => T, keyOf: (row: R) => string[]): Page<T> {
  const items = rows.slice(0, limit);
  return { items: items.map(view), next_cursor: rows.length > limit ? encodeCursor(keyOf(items.at(-1)!)) : null };
}
