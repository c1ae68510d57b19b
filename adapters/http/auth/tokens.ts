import { createHmac, randomUUID, webcrypto } from 'node:crypto';
import { codeChallengeOf } from '../../github/pkce.js';
import { SignJWT, jwtVerify, errors as joseErrors } from 'jose';
import type { KeyRing } from '../../crypto/keys.js';

/** Fixed, so a token of another issuer or for another audience never passes, whatever it is signed with. */
export const ISSUER = 'codex-k8s';
export const AUDIENCE = 'codex-k8s-staff-api';
const ALGORITHM = 'HS256';

export interface IssuedToken {
  token: string;
  expiresAt: Date;
}

/**
 * Whom a token names: the user, and the allowance it was issued under (see domain/users/user.ts),
 * so a token issued before a removal stays refused after the user is allowed again.
 */
export interface TokenSubject {
  userId: string;
  allowance: number;
}
const ALLOWANCE_CLAIM = 'allowance';

export class InvalidTokenError extends Error {
  override readonly name = 'InvalidTokenError';
}

/**
 * Staff tokens: short-lived JWTs naming the user (`sub`), signed with the first key of
 * CODEXK8S_JWT_KEYS under its key id, verified with whichever key the `kid` names, so keys rotate
 * without signing everyone out. Only HS256 is accepted: `alg: none` or another algorithm is refused
 * before any key is looked at.
 */
export function staffTokens(ring: KeyRing, options: { ttlSeconds: number; now?: () => number }) {
  const now = options.now ?? Date.now;
  // Imported once per key id: given raw bytes, jose imports the key again at every verification,
  // a third of its cost (measured: 95 µs against 65 µs of CPU a token).
  const verifyKeys = new Map<string, Promise<webcrypto.CryptoKey>>();
  const verifyKeyOf = (kid: string | undefined): Promise<webcrypto.CryptoKey> => {
    const raw = kid === undefined ? undefined : ring.byId.get(kid);
    if (!raw) throw new InvalidTokenError('unknown key id');
    let key = verifyKeys.get(kid!);
    if (!key) verifyKeys.set(kid!, (key = webcrypto.subtle.importKey('raw', raw, { name: 'HMAC', hash: 'SHA-256' }, false, ['verify'])));
    return key;
  };
  // A staff client sends one token for many requests: the exact string, once verified, is known
  // until it expires (a tampered token is another string, verified in full). Bounded: past the
  // bound it starts over, which only costs verifications.
  const verified = new Map<string, TokenSubject & { expiresAt: number }>();
  const MAX_VERIFIED = 10_000;
  return {
    async issue({ userId, allowance }: TokenSubject, ttlSeconds = options.ttlSeconds): Promise<IssuedToken> {
      const issuedAt = Math.floor(now() / 1000);
      const expiresAt = issuedAt + ttlSeconds;
      const token = await new SignJWT({ [ALLOWANCE_CLAIM]: allowance })
        .setProtectedHeader({ alg: ALGORITHM, kid: ring.current.id, typ: 'JWT' })
        .setSubject(userId)
        .setIssuer(ISSUER)
        .setAudience(AUDIENCE)
        .setIssuedAt(issuedAt)
        .setExpirationTime(expiresAt)
        .sign(ring.current.key);
      return { token, expiresAt: new Date(expiresAt * 1000) };
    },

    /** Whom the token names; InvalidTokenError (with a reason safe to answer) otherwise. */
    async verify(token: string): Promise<TokenSubject> {
      const known = verified.get(token);
      if (known) {
        if (Math.floor(now() / 1000) < known.expiresAt) return { userId: known.userId, allowance: known.allowance };
        verified.delete(token);
        throw new InvalidTokenError('expired');
      }
      try {
        const { payload } = await jwtVerify(
          token,
          (header) => verifyKeyOf(header.kid),
          { algorithms: [ALGORITHM], issuer: ISSUER, audience: AUDIENCE, requiredClaims: ['sub', 'exp', 'iat'], currentDate: new Date(now()) },
        );
        if (typeof payload.sub !== 'string' || payload.sub.length === 0) throw new InvalidTokenError('no subject');
        // A token issued before the claim was kept was issued under the first allowance, or is refused
        // for a user allowed again since.
        const allowance = payload[ALLOWANCE_CLAIM] ?? 1;
        if (typeof allowance !== 'number' || !Number.isSafeInteger(allowance) || allowance < 1) throw new InvalidTokenError(`bad ${ALLOWANCE_CLAIM} claim`);
        if (verified.size >= MAX_VERIFIED) verified.clear();
        verified.set(token, { userId: payload.sub, allowance, expiresAt: payload.exp! });
        return { userId: payload.sub, allowance };
      } catch (error) {
        if (error instanceof InvalidTokenError) throw error;
        if (error instanceof joseErrors.JWTExpired) throw new InvalidTokenError('expired');
        if (error instanceof joseErrors.JWSSignatureVerificationFailed) throw new InvalidTokenError('bad signature');
        if (error instanceof joseErrors.JOSEAlgNotAllowed) throw new InvalidTokenError('algorithm not allowed');
        if (error instanceof joseErrors.JWTClaimValidationFailed) throw new InvalidTokenError(`bad ${error.claim} claim`);
        throw new InvalidTokenError('malformed');
      }
    },
  };
}

export type StaffTokens = ReturnType<typeof staffTokens>;

const STATE_AUDIENCE = 'codex-k8s-github-login-state';

/**
 * The `state` of a GitHub login: a signed, 10-minute JWT with a random id, so it is valid on any pod
 * without being stored; its single use is recorded when it comes back (a stream per id). The PKCE
 * verifier is derived from the id with the signing key, so it is never stored or sent to the browser
 * either; only its S256 challenge goes to GitHub.
 */
export function loginStates(ring: KeyRing, options: { ttlSeconds?: number; now?: () => number } = {}) {
  const now = options.now ?? Date.now;
  const ttl = options.ttlSeconds ?? 600;
  const verifierOf = (key: Uint8Array, id: string) => createHmac('sha256', key).update(`pkce:${id}`).digest('base64url');
  return {
    async issue(): Promise<{ state: string; codeChallenge: string }> {
      const id = randomUUID();
      const issuedAt = Math.floor(now() / 1000);
      const state = await new SignJWT({})
        .setProtectedHeader({ alg: ALGORITHM, kid: ring.current.id })
        .setJti(id)
        .setIssuer(ISSUER)
        .setAudience(STATE_AUDIENCE)
        .setIssuedAt(issuedAt)
        .setExpirationTime(issuedAt + ttl)
        .sign(ring.current.key);
      return { state, codeChallenge: codeChallengeOf(verifierOf(ring.current.key, id)) };
    },

    /** The state's id and the verifier for its code; InvalidTokenError when forged, expired or malformed. */
    async open(state: string): Promise<{ id: string; codeVerifier: string }> {
      let key: Uint8Array | undefined;
      try {
        const { payload } = await jwtVerify(
          state,
          (header) => {
            key = header.kid === undefined ? undefined : ring.byId.get(header.kid);
            if (!key) throw new InvalidTokenError('unknown key id');
            return key;
          },
          { algorithms: [ALGORITHM], issuer: ISSUER, audience: STATE_AUDIENCE, requiredClaims: ['jti', 'exp'], currentDate: new Date(now()) },
        );
        if (typeof payload.jti !== 'string' || !/^[0-9a-f-]{36}$/.test(payload.jti)) throw new InvalidTokenError('malformed');
        return { id: payload.jti, codeVerifier: verifierOf(key!, payload.jti) };
      } catch (error) {
        if (error instanceof InvalidTokenError) throw error;
        throw new InvalidTokenError(error instanceof joseErrors.JWTExpired ? 'expired' : 'not one this platform gave');
      }
    },
  };
}
