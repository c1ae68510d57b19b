import { createHash, randomBytes } from 'node:crypto';

/** A fresh PKCE code verifier: 32 random bytes as base64url (43 characters, within RFC 7636's 43..128). */
export function newCodeVerifier(): string {
  return randomBytes(32).toString('base64url');
}

/** The S256 code challenge of a verifier; GitHub supports S256 only, never `plain`. */
export function codeChallengeOf(verifier: string): string {
  return createHash('sha256').update(verifier, 'ascii').digest('base64url');
}
