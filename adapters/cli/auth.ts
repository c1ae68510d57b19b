import type { Command } from 'commander';
import { databaseConfig, duration, staffApiConfig } from '../config.js';
import { createEventStore } from '../postgres/event-store.js';
import { createPools } from '../postgres/pools.js';
import { staffTokens } from '../http/auth/tokens.js';
import { ownerOf } from '../../commands/reservations.js';
import { hashEmail } from '../../commands/setup.js';
import { readFolded } from '../../commands/remembered-states.js';
import { userDecider, type User } from '../../domain/users/user.js';
import { isEmail } from '../../domain/shared/codec.js';
import { CliError } from './errors.js';
import { printJson } from './output.js';

/** `auth token`: a staff token for an allowed user, for break-glass and automation (stdout only). */
export function registerAuthCommands(program: Command): void {
  const auth = program.command('auth').description('staff tokens');
  auth
    .command('token <email>')
    .description('print a staff JWT for an allowed user on stdout')
    .option('--ttl <duration>', 'lifetime, like 15m or 1h (at most 24h)')
    .option('--json', 'print {token, token_type, expires_at, user_id}')
    .action(async (email: string, options: { ttl?: string; json?: boolean }) => {
      if (!isEmail(email)) throw new CliError('not an e-mail address');
      const config = staffApiConfig();
      const ttl = options.ttl === undefined ? config.jwtTtlSeconds : duration({ '--ttl': options.ttl }, '--ttl', config.jwtTtlSeconds, 60, 24 * 3600);
      const pools = createPools({ ...databaseConfig(), poolSize: 1 }, 'codex-k8s-cli');
      try {
        const store = createEventStore(pools.primary, { notify: false });
        const owner = await ownerOf(store, 'email', hashEmail(config.emailHashKey, email));
        const [user] = owner ? await readFolded(store, [{ stream: owner, fold: userDecider }]) : [];
        const state = user?.state as User | undefined;
        if (state?.status !== 'allowed') throw new CliError('no allowed user has that e-mail');
        const issued = await staffTokens(config.jwtKeys, { ttlSeconds: ttl }).issue(state);
        if (options.json) printJson({ token: issued.token, token_type: 'Bearer', expires_at: issued.expiresAt.toISOString(), user_id: state.userId });
        else process.stdout.write(`${issued.token}\n`);
      } finally {
        await pools.end();
      }
    });
}
