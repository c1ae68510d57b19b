import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const settings = {
  CODEXK8S_JWT_KEYS: () => `local1:${randomBytes(32).toString('base64')}`,
  CODEXK8S_EMAIL_HASH_KEY: () => `local1:${randomBytes(32).toString('base64')}`,
  CODEXK8S_TOKEN_ENCRYPTION_KEYS: () => `local1:${randomBytes(32).toString('base64')}`,
} as const;

/**
 * The keys a local `serve` needs, for development only: generated once into .codexk8s/ (mode 0600,
 * beside the local database whose hashes and ciphertexts depend on them) and printed by `db up` for
 * every one the environment does not set. A real installation sets its own (the bootstrap makes them).
 */
export function localSecretLines(root: string, env: Record<string, string | undefined> = process.env): string[] {
  const file = join(root, '.codexk8s', 'local-secrets.json');
  const kept: Record<string, string> = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>) : {};
  let changed = false;
  for (const [name, make] of Object.entries(settings)) {
    if (!kept[name]) {
      kept[name] = make();
      changed = true;
    }
  }
  if (changed) {
    mkdirSync(join(root, '.codexk8s'), { recursive: true });
    writeFileSync(file, `${JSON.stringify(kept, null, 2)}\n`, { mode: 0o600 });
  }
  return Object.keys(settings).filter((name) => !env[name]?.trim()).map((name) => `export ${name}=${kept[name]}`);
}
