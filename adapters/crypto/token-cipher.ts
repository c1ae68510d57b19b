import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { KeyRing } from './keys.js';

export class TokenCipherError extends Error {
  override readonly name = 'TokenCipherError';
}

/**
 * Repository tokens at rest: AES-256-GCM, `<key id>.<base64url(iv | tag | ciphertext)>`, with the
 * repository id as associated data, so a ciphertext moved to another repository does not decrypt.
 */
export function tokenCipher(ring: KeyRing) {
  const cipher = {
    encrypt(token: string, repositoryId: string): string {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', ring.current.key, iv);
      cipher.setAAD(Buffer.from(repositoryId));
      const sealed = Buffer.concat([cipher.update(token, 'utf8'), cipher.final()]);
      return `${ring.current.id}.${Buffer.concat([iv, cipher.getAuthTag(), sealed]).toString('base64url')}`;
    },
    decrypt(ciphertext: string, repositoryId: string): string {
      const [id, body] = ciphertext.split('.');
      const key = id ? ring.byId.get(id) : undefined;
      if (!key || !body) throw new TokenCipherError('the token was encrypted with a key this platform does not have');
      const raw = Buffer.from(body, 'base64url');
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
        decipher.setAAD(Buffer.from(repositoryId));
        decipher.setAuthTag(raw.subarray(12, 28));
        return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
      } catch {
        throw new TokenCipherError('the token does not decrypt for this repository');
      }
    },
    /** The same token sealed under the current key; the plaintext never leaves this call. */
    reencrypt(ciphertext: string, repositoryId: string): string {
      return cipher.encrypt(cipher.decrypt(ciphertext, repositoryId), repositoryId);
    },
  };
  return cipher;
}

export type TokenCipher = ReturnType<typeof tokenCipher>;
