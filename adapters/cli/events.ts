import type { Command } from 'commander';
import { databaseConfig } from '../config.js';
import { createEventStore, type RawEvent } from '../postgres/event-store.js';
import { createPools } from '../postgres/pools.js';
import { GlobalPosition } from '../../ports/position.js';
import { createWaker, subscribe } from '../postgres/subscription.js';
import { CliError } from './errors.js';

export function registerEventCommands(program: Command): void {
  const events = program.command('events').description('the event log');

  events
    .command('tail')
    .description('follow the event log (Ctrl-C stops)')
    .option('--stream <id>', 'only this stream')
    .option('--from <position>', 'start after this position (epoch:txid:seq); "start" for the beginning', 'now')
    .option('--limit <n>', 'stop after this many events')
    .option('--json', 'one JSON object per line')
    .action(async (options: { stream?: string; from: string; limit?: string; json?: boolean }) => {
      const config = databaseConfig();
      const limit = options.limit === undefined ? Infinity : Number(options.limit);
      if (!(limit > 0) || (limit !== Infinity && !Number.isInteger(limit))) throw new CliError('--limit must be a positive whole number');
      const pools = createPools({ ...config, poolSize: 2 }, 'codex-k8s-events-tail');
      const store = createEventStore(pools.primary, { notify: false });
      const from =
        options.from === 'now' ? await store.headPosition() : options.from === 'start' ? GlobalPosition.start : GlobalPosition.parse(options.from);
      const waker = await createWaker(config.primaryUrl);
      const controller = new AbortController();
      const stop = () => controller.abort();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      let printed = 0;
      const print = (e: RawEvent) => {
        if (options.json) {
          process.stdout.write(`${JSON.stringify(e)}\n`);
        } else {
          process.stdout.write(`${e.position}  ${e.createdAt.toISOString()}  ${e.stream}@${e.streamPosition}  ${e.type}  ${JSON.stringify(e.data)}\n`);
        }
      };
      const subscription = subscribe(store, {
        from,
        waker,
        signal: controller.signal,
        onBatch: async (batch) => {
          for (const e of batch) {
            if (options.stream && e.stream !== options.stream) continue;
            if (printed >= limit) break;
            print(e);
            printed++;
          }
          if (printed >= limit) controller.abort();
        },
      });
      try {
        await subscription.done;
      } finally {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        await waker.close();
        await pools.end();
      }
    });
}
