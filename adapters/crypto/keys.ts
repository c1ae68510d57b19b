import { ConfigError } from '../config.js';

/**
 * DESIGN.md's key-list format, shared by every key setting: comma-separated `kid:base64` entries;
 * the first signs or encrypts, every entry verifies or decrypts.
 */
export interface KeyRing {
  current: { id: string; key: Buffer };
  byId: ReadonlyMap<string, Buffer>;
}

export function parseKeyRing(variable: string, raw: string | undefined, check: { exactBytes?: number; minBytes?: number }): KeyRing {
  const entries = (raw ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  if (entries.length === 0) throw new ConfigError(`${variable} is not set`);
  const byId = new Map<string, Buffer>();
  const keys = entries.map((entry) => {
    const colon = entry.indexOf(':');
    const id = entry.slice(0, colon);
    if (colon < 1 || !/^[A-Za-z0-9_-]{1,32}$/.test(id)) throw new ConfigError(`${variable}: each entry is kid:base64`);
    // Buffer skips what it cannot decode, so the alphabet is checked first: standard or URL-safe
    // base64, wrapped over lines or not (openssl and base64 wrap), padding optional.
    const encoded = entry.slice(colon + 1).replace(/\s+/g, '');
    const alphabet = /^[A-Za-z0-9+/]+={0,2}$/.test(encoded) ? 'base64' : /^[A-Za-z0-9_-]+={0,2}$/.test(encoded) ? 'base64url' : undefined;
    if (!alphabet || encoded.replace(/=+$/, '').length % 4 === 1) throw new ConfigError(`${variable}: key ${id} is not base64`);
    const key = Buffer.from(encoded, alphabet);
    if (check.exactBytes !== undefined && key.length !== check.exactBytes) throw new ConfigError(`${variable}: key ${id} must be exactly ${check.exactBytes} bytes`);
    if (check.minBytes !== undefined && key.length < check.minBytes) throw new ConfigError(`${variable}: key ${id} must be at least ${check.minBytes} bytes`);
    if (byId.has(id)) throw new ConfigError(`${variable}: key id ${id} appears twice`);
    byId.set(id, key);
    return { id, key };
  });
  return { current: keys[0]!, byId };
}
