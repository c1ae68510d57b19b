import type { Command } from 'commander';
import { databaseConfig } from '../config.js';
import { createPools } from '../postgres/pools.js';
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
  const query = async (where: string, params: unknown[], limit: number): Promise<DeliveryRow[]> => {
    const pools = createPools({ ...databaseConfig(), poolSize: 1 }, 'codex-k8s-cli');
    try {
      const { rows } = await pools.primary.query<{ payload: DeliveryRow }>(
        `SELECT payload FROM flow_events WHERE event_type = 'DeliveryDecided' ${where} ORDER BY epoch DESC, tx_id DESC, position DESC LIMIT ${limit}`,
        params,
      );
      return rows.map((r) => r.payload);
    } finally {
      await pools.end();
    }
  };

  deliveries
    .command('list')
    .description('the newest deliveries first')
    .option('--limit <n>', 'how many', '50')
    .option('--json', 'print JSON')
    .action(async (options: { limit: string; json?: boolean }) => {
      const limit = Number(options.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new CliError('--limit must be a whole number from 1 to 1000');
      const rows = await query('', [], limit);
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
      const [delivery] = await query(`AND stream_id = $1`, [`delivery-${guid}`], 1);
      if (!delivery) throw new CliError(`no delivery ${guid}`);
      if (options.json) return printJson(delivery);
      for (const [k, v] of Object.entries(delivery)) process.stdout.write(`${k.padEnd(11)} ${Array.isArray(v) ? v.join(', ') || '-' : (v ?? '-')}\n`);
    });
}
