import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import { databaseConfig } from '../config.js';
import { createEventStore } from '../postgres/event-store.js';
import { createPools, type Pools } from '../postgres/pools.js';
import { allProjections, projectionNamed } from '../../projections/index.js';
import { resume, readCheckpoint } from '../../projections/checkpoints.js';
import { rebuild } from '../../projections/rebuild.js';
import { retryParked } from '../../projections/retry.js';
import { projectionStatus } from '../../projections/status.js';
import type { Projection } from '../../projections/projection.js';
import { CliError } from './errors.js';
import { printJson, printTable, say } from './output.js';

/** Pools for an operator command; `asOwner` for one that creates and swaps tables (a rebuild). */
async function withPools<T>(work: (pools: Pools) => Promise<T>, options: { asOwner?: boolean } = {}): Promise<T> {
  const config = databaseConfig();
  const pools = createPools({ ...config, primaryUrl: options.asOwner ? config.ownerUrl : config.primaryUrl, poolSize: 4 }, 'codex-k8s-cli');
  try {
    return await work(pools);
  } finally {
    await pools.end();
  }
}

function named(name: string): Projection {
  const projection = projectionNamed(name);
  if (!projection) throw new CliError(`unknown projection ${JSON.stringify(name.slice(0, 64))}; known: ${allProjections.map((p) => p.name).join(', ')}`);
  return projection;
}

async function confirm(question: string): Promise<boolean> {
  if (!process.stdin.isTTY) throw new CliError('refusing to rebuild without confirmation: pass --yes');
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim());
  } finally {
    rl.close();
  }
}

export function registerProjectionCommands(program: Command): void {
  const projections = program.command('projections').description('the read models: status, zero-downtime rebuild, restart, replay of parked events');

  projections
    .command('status')
    .description('position, lag, state, holder and dead letters per projection; replica replay lag')
    .option('--json', 'print JSON')
    .action(async (options: { json?: boolean }) => {
      const status = await withPools((pools) => projectionStatus(pools, allProjections));
      if (options.json) return printJson(status);
      printTable(
        status.projections.map((p) => ({
          projection: p.name,
          state: p.state,
          position: p.position,
          lag: `${p.lagEvents} ev / ${p.lagSeconds.toFixed(1)} s`,
          replica: p.replicas.map((r) => (r.lagEvents === null ? '?' : `${r.lagEvents} ev`)).join(', ') || '(primary)',
          dead: p.deadLetters,
          holder: p.holder,
          error: p.error,
        })),
        ['projection', 'state', 'position', 'lag', 'replica', 'dead', 'holder', 'error'],
      );
      for (const [i, r] of status.replicas.entries()) {
        say(`replica ${i + 1}: replay lag ${r.replayLagSeconds === null ? 'unknown' : `${r.replayLagSeconds.toFixed(3)} s`}${r.error ? ` (${r.error})` : ''}`);
      }
      if (status.heldBackBy && status.heldBackBy.seconds > 1) {
        const h = status.heldBackBy;
        say(`log readers are held back by a transaction open for ${h.seconds.toFixed(1)} s (pid ${h.pid}, ${h.application || 'unnamed'}, ${h.state})`);
      }
    });

  projections
    .command('rebuild <name>')
    .description('fold the whole log into shadow tables, catch up, and swap them in (the live model keeps serving)')
    .option('--yes', 'do not ask for confirmation')
    .option('--batch-size <n>', 'events per batch', '5000')
    .option('--json', 'print the result as JSON')
    .action(async (name: string, options: { yes?: boolean; batchSize: string; json?: boolean }) => {
      const projection = named(name);
      const batchSize = Number(options.batchSize);
      if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 100_000) throw new CliError('--batch-size must be a whole number from 1 to 100000');
      if (!options.yes && !(await confirm(`Rebuild ${projection.name} from the whole log?`))) throw new CliError('not confirmed');
      const controller = new AbortController();
      const interrupt = () => controller.abort();
      process.once('SIGINT', interrupt);
      const bar = new cliProgress.SingleBar(
        { format: `${projection.name} |{bar}| {percentage}% {value}/{total} events | {speed} events/s | ETA {eta_formatted} | {phase}`, stream: process.stderr, etaBuffer: 50, noTTYOutput: true, notTTYSchedule: 2000 },
        cliProgress.Presets.shades_classic,
      );
      const started = performance.now();
      let barStarted = false;
      try {
        const result = await withPools((pools) =>
          rebuild(projection, {
            pool: pools.primary,
            store: createEventStore(pools.primary, { notify: false }),
            batchSize,
            signal: controller.signal,
            onProgress: (p) => {
              const speed = Math.round(p.events / Math.max((performance.now() - started) / 1000, 0.001));
              if (!barStarted) {
                bar.start(p.total, p.events, { speed, phase: p.phase });
                barStarted = true;
              }
              bar.setTotal(p.total);
              bar.update(p.events, { speed, phase: p.phase });
            },
          }),
          { asOwner: true },
        );
        bar.stop();
        const summary = { projection: projection.name, events: result.events, applied: result.applied, parked: result.parked, seconds: Math.round(result.seconds * 1000) / 1000, events_per_s: Math.round(result.events / Math.max(result.seconds, 0.001)), position: result.position.toString() };
        if (options.json) printJson(summary);
        else say(`rebuilt ${projection.name}: ${result.events} events in ${summary.seconds} s (${summary.events_per_s} events/s), ${result.parked} parked; live from ${summary.position}`);
      } finally {
        if (barStarted) bar.stop();
        process.off('SIGINT', interrupt);
      }
    });

  projections
    .command('reset <name>')
    .description('let a stopped projection run again from where it stopped (after a fix)')
    .action(async (name: string) => {
      const projection = named(name);
      await withPools(async (pools) => {
        if (await resume(pools.primary, projection.name)) return say(`${projection.name} will resume from where it stopped`);
        const c = await readCheckpoint(pools.primary, projection.name);
        throw new CliError(`${projection.name} is not stopped (it is ${c ? c.state : 'not started yet'})`);
      });
    });

  projections
    .command('retry <name>')
    .description("replay a projection's parked events (dead letters) after a fix")
    .option('--json', 'print JSON')
    .action(async (name: string, options: { json?: boolean }) => {
      const projection = named(name);
      const result = await withPools((pools) => retryParked(projection, { pool: pools.primary, store: createEventStore(pools.primary, { notify: false }) }));
      if (options.json) return printJson(result);
      say(`${projection.name}: retried ${result.retried}, applied ${result.applied}, still parked ${result.stillParked}`);
      if (result.stillParked > 0) process.exitCode = 1;
    });
}
