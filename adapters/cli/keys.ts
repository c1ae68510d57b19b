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

/**
 * The projects that ever held a repository token, from the log itself (a read model may lag behind
 * a token sealed a moment ago, or have stopped): one scan, which only picks the streams to read;
 * whether to write is decided on each project's stream.
 */
async function projectsWithTokens(db: pg.Pool): Promise<string[]> {
  const { rows } = await db.query<{ project_id: string }>(
    `SELECT DISTINCT payload->>'projectId' AS project_id FROM flow_events
      WHERE event_type = 'RepositoryConnected' AND payload->>'tokenCiphertext' IS NOT NULL ORDER BY 1`,
  );
  return rows.map((r) => r.project_id);
}

/** The progress bar, on a terminal only: piped or in CI, the summary line is the whole output. */
function progress(total: number) {
  if (!process.stderr.isTTY || total === 0) return { advance: (_n: number) => {}, stop: () => {} };
  const bar = new cliProgress.SingleBar(
    { format: 'keys rotate |{bar}| {value}/{total} projects | ETA {eta_formatted}', stream: process.stderr, clearOnComplete: true },
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
        // Under the current key already: nothing to open (the decider writes nothing for it).
        if (tokenKeyId(ciphertext) === current) return ciphertext;
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
        const found = await projectsWithTokens(pools.primary);
        const bar = progress(found.length);
        const meta = operator();
        try {
          for (const projectId of found) {
            const done = await reencryptProjectTokens({ store }, projectId, reencrypt, meta);
            tally.repositories += done.repositories;
            tally.reencrypted += done.reencrypted;
            bar.advance(1);
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
