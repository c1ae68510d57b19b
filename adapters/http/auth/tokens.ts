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
  return {
    async issue(userId: string, ttlSeconds = options.ttlSeconds): Promise<IssuedToken> {
      const issuedAt = Math.floor(now() / 1000);
      const expiresAt = issuedAt + ttlSeconds;
      const token = await new SignJWT({})
        .setProtectedHeader({ alg: ALGORITHM, kid: ring.current.id, typ: 'JWT' })
        .setSubject(userId)
        .setIssuer(ISSUER)
        .setAudience(AUDIENCE)
        .setIssuedAt(issuedAt)
        .setExpirationTime(expiresAt)
        .sign(ring.current.key);
      return { token, expiresAt: new Date(expiresAt * 1000) };
    },

    /** The user id the token names; InvalidTokenError (with a reason safe to answer) otherwise. */
    async verify(token: string): Promise<string> {
      try {
        const { payload } = await jwtVerify(
          token,
          (header) => {
            const key = header.kid === undefined ? undefined : ring.byId.get(header.kid);
            if (!key) throw new InvalidTokenError('unknown key id');
            return key;
          },
          { algorithms: [ALGORITHM], issuer: ISSUER, audience: AUDIENCE, requiredClaims: ['sub', 'exp', 'iat'], currentDate: new Date(now()) },
        );
        if (typeof payload.sub !== 'string' || payload.sub.length === 0) throw new InvalidTokenError('no subject');
        return payload.sub;
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
