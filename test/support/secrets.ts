import { randomBytes } from 'node:crypto';

const key = (bytes: number) => randomBytes(bytes).toString('base64');

/** The staff API's keys for a `serve` under test: fresh for each test process, never a fixed value. */
export const staffSecrets = {
  CODEXK8S_JWT_KEYS: `test1:${key(32)}`,
  CODEXK8S_EMAIL_HASH_KEY: `e1:${key(32)}`,
  CODEXK8S_TOKEN_ENCRYPTION_KEYS: `k1:${key(32)}`,
};
