import type { Command } from 'commander';
import { databaseConfig } from '../config.js';
import { createPools } from '../postgres/pools.js';
import { createEventStore } from '../postgres/event-store.js';
import { streamOf } from '../../domain/shared/streams.js';
import { CliError } from './errors.js';
import { printJson, printTable } from './output.js';

interface DeliveryRow {
  guid: string;
  event: string;
  action: string | null;
  repository: string | null;
  number: number | null;
  label: string | null;
  sender: string | null;
  decision: string;
  reason: string | null;
  runIds: string[];
  receivedAt: string;
}

/** "Why did my label not start a run?": each delivery's decision and reason, from the log. */
export function registerDeliveryCommands(program: Command): void {
  const deliveries = program.command('deliveries').description('GitHub webhook deliveries and what was decided');
  // Decisions are read as events, through their codecs: a malformed one is an error, not a row.
  const decisions = async (find: (store: ReturnType<typeof createEventStore>) => Promise<string[]>): Promise<DeliveryRow[]> => {
    const pools = createPools({ ...databaseConfig(), poolSize: 1 }, 'codex-k8s-cli');
    try {
      const store = createEventStore(pools.primary, { notify: false });
      const events = (await store.readByIds(await find(store))).map((raw) => store.decode(raw));
      return events.flatMap((e) => (e.type === 'DeliveryDecided' ? [e.data as DeliveryRow] : [])).reverse();
    } finally {
      await pools.end();
    }
  };
  const newest = (limit: number) => async (store: ReturnType<typeof createEventStore>) =>
    (await store.pool.query<{ id: string }>(
      `SELECT id::text AS id FROM flow_events WHERE event_type = 'DeliveryDecided' ORDER BY epoch DESC, tx_id DESC, position DESC LIMIT $1`, [limit],
    )).rows.map((r) => r.id);

  deliveries
    .command('list')
    .description('the newest deliveries first')
    .option('--limit <n>', 'how many', '50')
    .option('--json', 'print JSON')
    .action(async (options: { limit: string; json?: boolean }) => {
      const limit = Number(options.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new CliError('--limit must be a whole number from 1 to 1000');
      const rows = await decisions(newest(limit));
      if (options.json) return printJson(rows);
      printTable(
        rows.map((d) => ({ received: d.receivedAt, guid: d.guid, event: [d.event, d.action].filter(Boolean).join('.'), repository: d.repository && d.number ? `${d.repository}#${d.number}` : d.repository, label: d.label, sender: d.sender, decision: d.decision, reason: d.reason ?? (d.runIds.join(',') || null) })),
        ['received', 'guid', 'event', 'repository', 'label', 'sender', 'decision', 'reason'],
      );
    });

  deliveries
    .command('show <guid>')
    .description("one delivery's decision and reason")
    .option('--json', 'print JSON')
    .action(async (guid: string, options: { json?: boolean }) => {
      if (!/^[A-Za-z0-9-]{1,100}$/.test(guid)) throw new CliError('not a delivery GUID');
      const [delivery] = await decisions(async (store) => (await store.readStream(streamOf.delivery(guid))).map((e) => e.id));
      if (!delivery) throw new CliError(`no delivery ${guid}`);
      if (options.json) return printJson(delivery);
      for (const [k, v] of Object.entries(delivery)) process.stdout.write(`${k.padEnd(11)} ${Array.isArray(v) ? v.join(', ') || '-' : (v ?? '-')}\n`);
    });
}
