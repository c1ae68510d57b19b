import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import type pg from 'pg';
import { databaseConfig } from '../config.js';
import { parseKeyRing } from '../crypto/keys.js';
import { tokenCipher, TokenCipherError } from '../crypto/token-cipher.js';
import { createEventStore } from '../postgres/event-store.js';
import { createPools } from '../postgres/pools.js';
import { reencryptProjectTokens, type Reencrypt } from '../../commands/reencrypt-tokens.js';
import { tokenKeyId } from '../../domain/projects/events.js';
import { printJson, say } from './output.js';
import { operator } from './setup.js';

interface Candidate {
  projectId: string;
  tokens: number;
  /** Tokens the read model last saw under another key than the current one. */
  stale: number;
}

/**
 * The projects that hold tokens, from the repositories model on the primary (fresher than a replica).
 * It only picks which streams to read: whether to write is decided on each project's stream.
 */
async function candidates(db: pg.Pool, currentKeyId: string): Promise<Candidate[]> {
  const { rows } = await db.query<{ project_id: string; tokens: number; stale: number }>(
    `SELECT project_id::text, count(*)::int AS tokens, (count(*) FILTER (WHERE token_key_id IS DISTINCT FROM $1))::int AS stale
     FROM repositories WHERE has_token GROUP BY project_id ORDER BY project_id`,
    [currentKeyId],
  );
  return rows.map((r) => ({ projectId: r.project_id, tokens: r.tokens, stale: r.stale }));
}

/** The progress bar, on a terminal only: piped or in CI, the summary line is the whole output. */
function progress(total: number) {
  if (!process.stderr.isTTY || total === 0) return { advance: (_n: number) => {}, stop: () => {} };
  const bar = new cliProgress.SingleBar(
    { format: 'keys rotate |{bar}| {value}/{total} repository tokens | ETA {eta_formatted}', stream: process.stderr, clearOnComplete: true },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0);
  return { advance: (n: number) => bar.increment(n), stop: () => bar.stop() };
}

export function registerKeyCommands(program: Command): void {
  const keys = program.command('keys').description('the keys repository tokens are encrypted with (CODEXK8S_TOKEN_ENCRYPTION_KEYS)');
  keys
    .command('rotate')
    .description('re-encrypt every stored repository token under the first key of CODEXK8S_TOKEN_ENCRYPTION_KEYS; run it again to finish an interrupted run')
    .option('--json', 'print {repositories, reencrypted, already_current}')
    .action(async (options: { json?: boolean }) => {
      const ring = parseKeyRing('CODEXK8S_TOKEN_ENCRYPTION_KEYS', process.env.CODEXK8S_TOKEN_ENCRYPTION_KEYS, { exactBytes: 32 });
      const cipher = tokenCipher(ring);
      const current = ring.current.id;
      const reencrypt: Reencrypt = (ciphertext, repositoryId) => {
        try {
          return cipher.reencrypt(ciphertext, repositoryId);
        } catch (error) {
          if (!(error instanceof TokenCipherError)) throw error;
          // Which repository and which key: what the operator needs to put the old key back.
          throw new TokenCipherError(`repository ${repositoryId}: its token is sealed under key ${tokenKeyId(ciphertext)}, which does not decrypt it here; keep every old key in CODEXK8S_TOKEN_ENCRYPTION_KEYS until keys rotate has finished`);
        }
      };
      const pools = createPools({ ...databaseConfig(), poolSize: 2 }, 'codex-k8s-cli');
      const tally = { repositories: 0, reencrypted: 0, already_current: 0 };
      try {
        const store = createEventStore(pools.primary);
        const found = await candidates(pools.primary, current);
        const bar = progress(found.reduce((n, c) => n + c.tokens, 0));
        const meta = operator();
        try {
          for (const candidate of found) {
            // All under the current key as far as the model knows: nothing to decide, so no stream to read.
            const done = candidate.stale === 0 ? { repositories: candidate.tokens, reencrypted: 0 } : await reencryptProjectTokens({ store }, candidate.projectId, reencrypt, meta);
            tally.repositories += done.repositories;
            tally.reencrypted += done.reencrypted;
            bar.advance(candidate.tokens);
          }
        } finally {
          bar.stop();
        }
      } finally {
        await pools.end();
      }
      tally.already_current = tally.repositories - tally.reencrypted;
      if (options.json) return printJson(tally);
      say(
        tally.repositories === 0 ? 'no repository tokens are stored'
        : tally.reencrypted === 0 ? `nothing left to re-encrypt: all ${tally.repositories} repository tokens are under key ${current}`
        : `re-encrypted ${tally.reencrypted} of ${tally.repositories} repository tokens under key ${current} (${tally.already_current} already were)`,
      );
    });
}
