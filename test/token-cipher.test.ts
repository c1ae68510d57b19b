import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { parseKeyRing } from '../adapters/crypto/keys.js';
import { tokenCipher } from '../adapters/crypto/token-cipher.js';

const key = () => randomBytes(32).toString('base64');

describe('repository token encryption', () => {
  it('round-trips, names its key, and binds the repository id', () => {
    const ring = parseKeyRing('CODEXK8S_TOKEN_ENCRYPTION_KEYS', `new:${key()},old:${key()}`, { exactBytes: 32 });
    const cipher = tokenCipher(ring);
    const sealed = cipher.encrypt('ghp_secret', 'repo-1');
    assert.match(sealed, /^new\.[A-Za-z0-9_-]+$/);
    assert.ok(!sealed.includes('ghp_secret'));
    assert.equal(cipher.decrypt(sealed, 'repo-1'), 'ghp_secret');
    assert.throws(() => cipher.decrypt(sealed, 'repo-2'), /does not decrypt for this repository/);
    assert.notEqual(cipher.encrypt('ghp_secret', 'repo-1'), sealed, 'a fresh IV each time');
  });

  it('decrypts with any listed key after a rotation, and refuses unknown ones', () => {
    const oldKey = key();
    const before = tokenCipher(parseKeyRing('K', `old:${oldKey}`, { exactBytes: 32 })).encrypt('t', 'r');
    const rotated = tokenCipher(parseKeyRing('K', `new:${key()},old:${oldKey}`, { exactBytes: 32 }));
    assert.equal(rotated.decrypt(before, 'r'), 't');
    const dropped = tokenCipher(parseKeyRing('K', `new:${key()}`, { exactBytes: 32 }));
    assert.throws(() => dropped.decrypt(before, 'r'), /a key this platform does not have/);
  });

  it('refuses malformed key lists, naming the variable', () => {
    assert.throws(() => parseKeyRing('CODEXK8S_TOKEN_ENCRYPTION_KEYS', '', { exactBytes: 32 }), /CODEXK8S_TOKEN_ENCRYPTION_KEYS is not set/);
    assert.throws(() => parseKeyRing('CODEXK8S_TOKEN_ENCRYPTION_KEYS', `k1:${randomBytes(16).toString('base64')}`, { exactBytes: 32 }), /exactly 32 bytes/);
    assert.throws(() => parseKeyRing('CODEXK8S_TOKEN_ENCRYPTION_KEYS', 'nocolon', { exactBytes: 32 }), /kid:base64/);
    assert.throws(() => parseKeyRing('K', `a:${key()},a:${key()}`, { exactBytes: 32 }), /appears twice/);
  });

  it('refuses a key that is not base64, though the bytes it would decode to are enough (found by a review: Buffer skips what it cannot decode)', () => {
    for (const bad of [`${key()}#&*`, 'my password is not base64 at all!!! but it is long enough', `${key().slice(0, 20)}$${key().slice(20)}`, `${key()}+_`]) {
      assert.throws(() => parseKeyRing('CODEXK8S_JWT_KEYS', `k1:${bad}`, { minBytes: 32 }), (e: Error) => e.name === 'ConfigError' && /CODEXK8S_JWT_KEYS: key k1 is not base64/.test(e.message) && !e.message.includes(bad), bad);
    }
    const bytes = randomBytes(64);
    const wrapped = bytes.toString('base64').replace(/(.{64})/g, '$1\n'); // as openssl rand -base64 64 prints it
    for (const [what, text] of [['unpadded', bytes.toString('base64').replace(/=+$/, '')], ['wrapped over lines', wrapped], ['URL-safe', bytes.toString('base64url')]]) {
      assert.deepEqual(parseKeyRing('K', `k1:${text}`, { minBytes: 32 }).current.key, bytes, `${what} (found by a review: refused after the check came in)`);
    }
  });
});
