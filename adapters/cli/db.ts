import type { Command } from 'commander';
import { databaseConfig } from '../config.js';
import { down, envLines, localCluster, status, up } from '../postgres/local-cluster.js';
import { migrate } from '../postgres/migrate.js';
import { projectRoot } from '../paths.js';
import { CliError } from './errors.js';
import { localSecretLines } from './local-secrets.js';
import { printJson, printTable, say } from './output.js';

export function registerDbCommands(program: Command): void {
  const db = program.command('db').description('the local development PostgreSQL: a primary and an async streaming replica');
  const cluster = () => localCluster(projectRoot);

  db.command('up')
    .description('install what is missing, start the primary and replica, print their CODEXK8S_* settings')
    .action(async () => {
      const c = cluster();
      await up(c, say);
      process.stdout.write(`${[...envLines(c), ...localSecretLines(projectRoot)].join('\n')}\n`);
    });

  db.command('down')
    .description('stop the local primary and replica')
    .option('--purge', 'also delete their data')
    .action((options: { purge?: boolean }) => down(cluster(), say, options));

  db.command('status')
    .description('show the local primary and replica and the replication between them')
    .option('--json', 'print JSON')
    .action(async (options: { json?: boolean }) => {
      const servers = await status(cluster());
      if (options.json) return printJson(servers);
      printTable(
        servers.map((s) => ({
          role: s.role,
          port: s.port,
          running: s.running ? 'yes' : 'no',
          recovery: s.inRecovery === undefined ? undefined : s.inRecovery ? 'standby' : 'primary',
          replication: s.replication?.map((r) => `${r.state}, ${r.replayLagBytes} B behind`).join('; ') ?? s.receiving?.status,
          error: s.error,
        })),
        ['role', 'port', 'running', 'recovery', 'replication', 'error'],
      );
      if (servers.some((s) => !s.running)) process.exitCode = 3;
    });

  program
    .command('migrate')
    .description('apply migrations/ as CODEXK8S_DATABASE_OWNER_URL (else CODEXK8S_DATABASE_URL); safe to repeat')
    .option('--json', 'print JSON')
    .action(async (options: { json?: boolean }) => {
      const { ownerUrl } = databaseConfig();
      const result = await migrate(ownerUrl, say).catch((error: Error) => {
        throw new CliError(`migration failed: ${error.message.split('\n')[0]}`);
      });
      if (options.json) return printJson(result);
      say(result.applied.length ? `applied ${result.applied.join(', ')}` : 'nothing to apply: the schema is current');
      if (result.epochBumpedTo) say(`stored events were ahead of this cluster: the event log moved to epoch ${result.epochBumpedTo}`);
    });
}
