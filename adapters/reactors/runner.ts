import { hostname } from 'node:os';
import type pg from 'pg';
import { GlobalPosition, type EventMeta, type EventStore, type RawEvent } from '../../ports/event-store.js';
import { idleWaits, type PollingBackoff, type Waker } from '../../ports/waker.js';
import { sleep, whileLeased } from '../../projections/lease.js';
import type { Logger } from '../log.js';
import type { Reactor } from './reactor.js';
import { checkpointSaver, type CheckpointSaver } from './checkpoint-saver.js';
import { isOneOf } from '../../domain/events.js';

export interface ReactorRunnerOptions {
  pool: pg.Pool;
  store: Pick<EventStore, 'readAllRaw' | 'decode'>;
  waker: Waker;
  signal: AbortSignal;
  log: Logger;
  batchSize?: number;
  backoff?: PollingBackoff;
  leaseRetryMs?: number;
  /** Tries of one event's reaction before it is parked as a dead letter (`reactor:<name>`). */
  attempts?: number;
  /** The first wait after a failed reaction; it doubles up to 30 s. */
  retryMs?: number;
}

const holder = () => `${hostname()}:${process.pid}`;
const PASSED_SAVE_MS = 1000;
/** How long a busy reactor may keep reactions that ended unsaved (a crash replays them; each is idempotent). */
const REACTED_SAVE_MS = 100;
/** A reactor with concurrency reads ahead at most this many batches past its oldest reaction in flight. */
const WINDOW_BATCHES = 10;
/** How often it looks for news while reactions are in flight and no notification came. */
const WINDOW_POLL_MS = 50;

/**
 * Runs one reactor until `signal` aborts: one active instance across processes (a lease on a
 * connection of its own; a standby takes over within a second of the holder's death), following
 * the log from its checkpoint. Each handled event's reaction is retried with backoff and, past
 * `attempts`, parked as a dead letter, so one event never holds every later one back for good.
 * The checkpoint moves after each reaction, saved at most REACTED_SAVE_MS later while the log is
 * busy and at once when the reactor goes idle: a crash replays at most the event in hand and those
 * reacted to in that time (each reaction is idempotent; a save per reaction held the next back for
 * a round trip).
 */
export async function runReactor(reactor: Reactor, options: ReactorRunnerOptions): Promise<void> {
  const { pool, signal, log } = options;
  await whileLeased(
    {
      pool, signal, key: `codexk8s.reactor.${reactor.name}`, applicationName: `codex-k8s-reactor ${reactor.name}`,
      retryMs: options.leaseRetryMs ?? 1000,
      onError: (error) => log.warn({ reactor: reactor.name, err: error }, 'reactor interrupted; retrying'),
    },
    async (lease, lost) => {
      await pool.query('INSERT INTO reactor_checkpoints (name) VALUES ($1) ON CONFLICT (name) DO NOTHING', [reactor.name]);
      await pool.query('UPDATE reactor_checkpoints SET holder = $2, updated_at = now() WHERE name = $1', [reactor.name, holder()]);
      log.info({ reactor: reactor.name }, 'reactor lease acquired');
      reactor.leased?.();
      try {
        await follow(reactor, options, lost);
      } finally {
        reactor.unleased?.();
        await pool.query('UPDATE reactor_checkpoints SET holder = NULL WHERE name = $1 AND holder = $2', [reactor.name, holder()]).catch(() => {});
      }
    },
  );
}

async function follow(reactor: Reactor, options: ReactorRunnerOptions, lost: () => Error | undefined): Promise<void> {
  const { pool } = options;
  const { rows } = await pool.query<{ epoch: number; tx_id: string; position: string }>(
    'SELECT epoch, tx_id::text AS tx_id, position::text AS position FROM reactor_checkpoints WHERE name = $1',
    [reactor.name],
  );
  const from = new GlobalPosition(rows[0]!.epoch, BigInt(rows[0]!.tx_id), BigInt(rows[0]!.position));
  const checkpoint = checkpointSaver((to, reacted, error) =>
    pool.query(
      `UPDATE reactor_checkpoints SET epoch = $2, tx_id = $3::xid8, position = $4, reactions = reactions + $5, last_error = $6, updated_at = now()
        WHERE name = $1 AND holder = $7`,
      [reactor.name, to.epoch, to.txId.toString(), to.seq.toString(), reacted, error, holder()],
    ));
  try {
    await followFrom(reactor, options, lost, from, checkpoint);
  } finally {
    // A save due later must not land after this runner ended (the lease may be this process's again by then).
    checkpoint.stop();
  }
}

async function followFrom(reactor: Reactor, options: ReactorRunnerOptions, lost: () => Error | undefined, from: GlobalPosition, checkpoint: CheckpointSaver): Promise<void> {
  const { store, signal, log } = options;
  const waits = idleWaits(options.waker, options.backoff);
  let position = from;
  const { moveWithin, flush } = checkpoint;
  // Passing events the reactor does not handle moves the checkpoint at most once a second while the
  // log is busy (a crash replays them, which costs nothing), and at once when it goes idle.
  const pass = (to: GlobalPosition) => moveWithin(PASSED_SAVE_MS, to, 0, null);
  const saved = (to: GlobalPosition, reacted: number, error: string | null) => moveWithin(0, to, reacted, error);
  if ((reactor.concurrency ?? 1) > 1) {
    await reactInWindow();
    return;
  }
  /**
   * Independent reactions at once (`concurrency`), started as their events are read, not batch by
   * batch, so one slow reaction holds back no later one. The checkpoint passes an event once it and
   * every handled event before it are done, and is saved at most REACTED_SAVE_MS later while others
   * are in flight, so a crash replays at most what was in flight and what ended in that time (each
   * reaction is idempotent). Reading stops while the window is full.
   */
  async function reactInWindow(): Promise<void> {
    const concurrency = reactor.concurrency!;
    const batchSize = options.batchSize ?? 200;
    type Entry = { raw: RawEvent; state: 'queued' | 'running' | 'done' | 'aborted'; error: string | null };
    const window: Entry[] = [];
    const queued: Entry[] = [];
    const running = new Set<Promise<void>>();
    let readAt = position;
    let finished = false;
    let failure: unknown;
    let wake = () => {};
    const start = (entry: Entry) => {
      entry.state = 'running';
      const reaction = reactWithRetries(reactor, entry.raw, options).then(
        (error) => {
          entry.state = error === 'aborted' ? 'aborted' : 'done';
          entry.error = error === 'aborted' ? null : error;
        },
        // Parking it failed too (the database is gone): the runner stops and its lease is retried;
        // the event stays unpassed, so it is reacted to again.
        (error: unknown) => void (failure ??= error),
      ).finally(() => {
        running.delete(reaction);
        finished = true;
        wake();
      });
      running.add(reaction);
    };
    const advance = async () => {
      let to: GlobalPosition | undefined;
      let reacted = 0;
      let lastError: string | null = null;
      while (window.length > 0 && window[0]!.state === 'done') {
        const entry = window.shift()!;
        to = entry.raw.position;
        if (isOneOf(reactor.handles, entry.raw.type)) {
          reacted++;
          lastError = entry.error ?? lastError;
        }
      }
      if (!to) return;
      position = to;
      // Each save would hold the window up for a round trip: reactions that end meanwhile share it
      // (and the window's going idle saves at once).
      await moveWithin(reacted > 0 ? REACTED_SAVE_MS : PASSED_SAVE_MS, to, reacted, lastError);
    };
    try {
      while (!signal.aborted) {
        if (lost()) throw lost();
        if (failure) throw failure;
        let read = 0;
        if (running.size + queued.length < concurrency && window.length < batchSize * WINDOW_BATCHES) {
          const batch = await store.readAllRaw(readAt, batchSize);
          read = batch.length;
          for (const raw of batch) {
            const handled = isOneOf(reactor.handles, raw.type);
            const entry: Entry = { raw, state: handled ? 'queued' : 'done', error: null };
            window.push(entry);
            if (handled) queued.push(entry);
          }
          if (read > 0) {
            readAt = batch[read - 1]!.position;
            waits.found();
          }
        }
        while (running.size < concurrency && queued.length > 0 && !signal.aborted) start(queued.shift()!);
        await advance();
        if (read > 0) continue;
        if (running.size === 0 && queued.length === 0) {
          await flush();
          await waits.wait(signal);
          continue;
        }
        // Reactions in flight: go on when one ends, or when the log may have news.
        if (finished) {
          finished = false;
          continue;
        }
        await new Promise<void>((resolve) => {
          wake = resolve;
          void options.waker.sleep(WINDOW_POLL_MS, signal).then(() => resolve());
        });
        finished = false;
      }
    } finally {
      // Stopping: reactions in flight see the signal; nothing past them is recorded. What ended
      // before is saved, if the database still answers (else it is replayed).
      await Promise.allSettled([...running]);
      await flush().catch(() => {});
    }
  }

  const together = reactor.together;
  /**
   * A stretch of a batch that starts with an event `together` handles: those events at once, then
   * the checkpoint past the stretch; when that fails, one by one as usual. False when stopped.
   */
  async function reactTogether(stretch: RawEvent[]): Promise<boolean> {
    const group = stretch.filter((e) => isOneOf(together!.handles, e.type));
    const last = stretch.at(-1)!.position;
    try {
      await together!.react(group.map((e) => store.decode(e)), { signal, metaOf: metaFor(reactor) });
      if (signal.aborted) return false;
      await moveWithin(REACTED_SAVE_MS, last, group.length, null);
      return true;
    } catch (error) {
      log.warn({ reactor: reactor.name, events: group.length, err: error }, 'reacting to events together failed; reacting one by one');
    }
    for (const event of group) {
      const failed = await reactWithRetries(reactor, event, options);
      if (signal.aborted && failed === 'aborted') return false;
      await saved(event.position, 1, failed);
    }
    if (signal.aborted) return false;
    if (group.at(-1)!.position.compare(last) !== 0) await saved(last, 0, null);
    return true;
  }

  while (!signal.aborted) {
    if (lost()) throw lost();
    const batch = await store.readAllRaw(position, options.batchSize ?? 200);
    if (batch.length === 0) {
      await flush();
      await waits.wait(signal);
      continue;
    }
    waits.found();
    let passed: GlobalPosition | undefined;
    for (let i = 0; i < batch.length && !signal.aborted; i++) {
      const raw = batch[i]!;
      if (together && isOneOf(together.handles, raw.type)) {
        // This event and the ones of the same kinds after it (passing over events the reactor ignores).
        let end = i + 1;
        while (end < batch.length && (isOneOf(together.handles, batch[end]!.type) || !isOneOf(reactor.handles, batch[end]!.type))) end++;
        if (!(await reactTogether(batch.slice(i, end)))) break;
        passed = undefined;
        position = batch[end - 1]!.position;
        i = end - 1;
      } else if (isOneOf(reactor.handles, raw.type)) {
        const error = await reactWithRetries(reactor, raw, options);
        if (signal.aborted && error === 'aborted') break;
        await moveWithin(REACTED_SAVE_MS, raw.position, 1, error);
        passed = undefined;
        position = raw.position;
      } else {
        passed = raw.position;
        position = raw.position;
      }
      if (lost()) throw lost();
    }
    if (passed) await pass(passed);
    log.debug({ reactor: reactor.name, position: position.toString() }, 'reactor batch done');
  }
  await flush(); // stopping: what was reacted to is saved
}

/** What a reaction records is caused by the event, in its correlation. */
const metaFor = (reactor: Reactor) => (event: Pick<RawEvent, 'id' | 'correlationId'>): EventMeta => ({
  correlationId: event.correlationId, causationId: event.id, actor: { type: 'system', id: `reactor:${reactor.name}` },
});

/** Null when the reaction succeeded; its last error when it was parked; 'aborted' when stopped. */
async function reactWithRetries(reactor: Reactor, raw: RawEvent, options: ReactorRunnerOptions): Promise<string | null> {
  const { store, signal, log, pool } = options;
  const attempts = options.attempts ?? 8;
  let wait = options.retryMs ?? 200;
  let last = '';
  for (let attempt = 1; attempt <= attempts; attempt++) {
    try {
      const event = store.decode(raw);
      await reactor.react(event, { signal, meta: metaFor(reactor)(raw) });
      return null;
    } catch (error) {
      last = (error instanceof Error ? `${error.name}: ${error.message}` : String(error)).slice(0, 2000);
      log.warn({ reactor: reactor.name, event_id: raw.id, attempt, error: last }, 'reaction failed');
      if (attempt === attempts) break;
      await sleep(wait * (0.5 + Math.random()), signal);
      if (signal.aborted) return 'aborted';
      wait = Math.min(wait * 2, 30_000);
    }
  }
  await pool.query(
    `INSERT INTO projection_dead_letters (projection, event_id, epoch, tx_id, position, event_type, error)
     VALUES ($1, $2, $3, $4::xid8, $5, $6, $7) ON CONFLICT (projection, event_id) DO UPDATE SET error = EXCLUDED.error, parked_at = now()`,
    [`reactor:${reactor.name}`, raw.id, raw.position.epoch, raw.position.txId.toString(), raw.position.seq.toString(), raw.type, last],
  );
  log.error({ reactor: reactor.name, event_id: raw.id, error: last }, 'reaction parked as a dead letter');
  return last;
}
