import { ConcurrencyError, type EventMeta, type EventStore } from '../ports/event-store.js';
import { decideRun, runDecider, type Run } from '../domain/runs/run.js';
import { assignSlots, decideSlot, slotDecider, type Slot } from '../domain/slots/slot.js';
import { streamOf } from '../domain/shared/streams.js';
import type { GithubActor, RunResult } from '../domain/runs/events.js';
import { handleCommand, type Load, type Write } from './handle-command.js';
import { readFolded, type StateAt } from './remembered-states.js';

export interface RunCommandDeps {
  store: Pick<EventStore, 'append' | 'readStreams'>;
  now: () => string;
  /** How long a slot's lease lasts unless its holder renews it. */
  leaseMs: number;
}

export type Outcome = { type: 'SucceedRun'; result?: RunResult } | { type: 'FailRun'; reason: string; result?: RunResult } | { type: 'CancelRun'; reason: string; by: GithubActor | null };

/**
 * Schedules a pending run on the first free slot of its project (1…slots; a slot whose lease ran
 * out is free), leasing the slot in the same append at the version read, so two schedulers never
 * lease one slot twice. Undefined when the project is saturated (the run waits).
 */
export async function scheduleRun(deps: RunCommandDeps, runId: string, slots: number, meta: EventMeta): Promise<{ slot: number } | undefined> {
  const outcome = await trySchedule(deps, runId, slots, meta);
  return typeof outcome === 'object' ? outcome : undefined;
}

/** scheduleRun, telling a saturated project from a run that is no longer pending (`ended`, or scheduled elsewhere). */
type Scheduling = { slot: number } | 'saturated' | 'not_pending';
async function trySchedule(deps: RunCommandDeps, runId: string, slots: number, meta: EventMeta): Promise<Scheduling> {
  const { result } = await handleCommand<Scheduling>(deps, meta, async (load) => {
    const [run] = await load<[Run]>([{ stream: streamOf.run(runId), fold: runDecider }]);
    if (run.state.status !== 'pending') return { writes: [], result: run.state.status === 'scheduled' || run.state.status === 'running' ? { slot: run.state.slot } : 'not_pending' as const };
    const { projectId } = run.state;
    const now = deps.now();
    // Every slot in one round trip; only the one taken is guarded (it is written at its version):
    // a busy slot passed over does not matter to the decision.
    const states = await load<Slot[]>(slotFolds(projectId, slots), { guard: false });
    const [taken] = assignSlots([runId], states.map((s) => s.state), now);
    if (!taken) return { writes: [], result: 'saturated' as const };
    return { writes: scheduleWrites(deps, run, states[taken.slot - 1]!, taken.slot, now), result: { slot: taken.slot } };
  });
  return result;
}

const slotFolds = (projectId: string, slots: number) => Array.from({ length: slots }, (_, i) => ({ stream: streamOf.slot(projectId, i + 1), fold: slotDecider }));

/** A run scheduled on slot n, and the slot leased to it: one append, so neither happens alone. */
function scheduleWrites(deps: RunCommandDeps, run: StateAt<Run>, slot: StateAt<Slot>, n: number, now: string): Write[] {
  const leaseExpiresAt = new Date(Date.parse(now) + deps.leaseMs).toISOString();
  const { projectId, runId } = run.state as Run & { status: 'pending' };
  return [
    { stream: run.stream, expected: run.version, events: decideRun({ type: 'ScheduleRun', slot: n, leaseExpiresAt, now }, run.state) },
    { stream: slot.stream, expected: slot.version, events: decideSlot({ type: 'LeaseSlot', projectId, slot: n, runId, leaseExpiresAt, now }, slot.state) },
  ];
}

/**
 * Schedules a burst of one project's requested runs (oldest first) with one read of their streams
 * and the project's slots, then an append per scheduled run, all at once (the event store commits
 * concurrent appends together), each in its run's correlation. A run whose append meets a change
 * (another scheduler, a cancel) is scheduled again alone, on fresh state. Returns the runs left
 * waiting for a slot.
 */
export async function scheduleRuns(deps: RunCommandDeps, projectId: string, runIds: readonly string[], slots: number, metaOf: (runId: string) => EventMeta): Promise<string[]> {
  const read = await readFolded(deps.store, [...runIds.map((id) => ({ stream: streamOf.run(id), fold: runDecider })), ...slotFolds(projectId, slots)]);
  const runs = read.slice(0, runIds.length) as StateAt<Run>[];
  const slotStates = read.slice(runIds.length) as StateAt<Slot>[];
  const pending = runs.filter((r) => r.state.status === 'pending' && r.state.projectId === projectId);
  const pendingIds = pending.map((r) => (r.state as Run & { status: 'pending' }).runId);
  const now = deps.now();
  const retry: string[] = [];
  const assigned = assignSlots(pendingIds, slotStates.map((s) => s.state), now);
  await Promise.all(assigned.map(async ({ runId, slot }) => {
    const run = pending[pendingIds.indexOf(runId)]!;
    try {
      await deps.store.append(scheduleWrites(deps, run, slotStates[slot - 1]!, slot, now).map((w) => ({ stream: w.stream, expected: w.expected!, events: w.events })), metaOf(runId));
    } catch (error) {
      if (!(error instanceof ConcurrencyError)) throw error;
      retry.push(runId);
    }
  }));
  const waiting = pendingIds.filter((id) => !assigned.some((a) => a.runId === id));
  if (retry.length === 0) return waiting;
  // The runs retried, and those left waiting after them, one by one in age order on fresh state
  // until the project is saturated: a retried run that ended meanwhile (a cancel) leaves its slot to
  // the next.
  const still: string[] = [];
  for (const runId of runIds.filter((id) => retry.includes(id) || waiting.includes(id))) {
    if ((still.length > 0 ? 'saturated' : await trySchedule(deps, runId, slots, metaOf(runId))) === 'saturated') still.push(runId);
  }
  return still;
}

/**
 * The writes that end a run (an outcome or a cancel) and release its slot in the same append, so a
 * finished run never keeps a slot. Nothing when the run has finished already.
 */
export async function endingWrites(load: Load, run: { stream: string; state: Run }, outcome: Outcome, now: string): Promise<Write[]> {
  const events = decideRun({ ...outcome, now }, run.state);
  if (events.length === 0 || run.state.status === 'none' || run.state.slot === null) return [{ stream: run.stream, events }];
  const { projectId, runId, slot: n } = run.state;
  const [slot] = await load<[Slot]>([{ stream: streamOf.slot(projectId, n), fold: slotDecider }]);
  return [{ stream: run.stream, events }, { stream: slot.stream, events: decideSlot({ type: 'ReleaseSlot', projectId, slot: n, runId, now }, slot.state) }];
}

/** Records a run's outcome (or cancels it), releasing its slot in the same append. */
export async function endRun(deps: Pick<RunCommandDeps, 'store' | 'now'>, runId: string, outcome: Outcome, meta: EventMeta): Promise<boolean> {
  const { append } = await handleCommand(deps, meta, async (load) => {
    const [run] = await load<[Run]>([{ stream: streamOf.run(runId), fold: runDecider }]);
    return { writes: await endingWrites(load, run, outcome, deps.now()), result: undefined };
  });
  return append !== undefined;
}

/**
 * Renews the lease of a scheduled or running run's slot (its tracker is alive): a slot is a lease
 * its holder renews, so the slot of a run nobody tracks any more comes back by itself. A lease that
 * ran out is renewed while no other run took the slot. False when there is nothing to renew or the
 * slot was taken meanwhile.
 */
export async function renewLease(deps: RunCommandDeps, runId: string, meta: EventMeta): Promise<boolean> {
  const { append } = await handleCommand(deps, meta, async (load) => {
    const [run] = await load<[Run]>([{ stream: streamOf.run(runId), fold: runDecider }]);
    if (run.state.status !== 'scheduled' && run.state.status !== 'running') return { writes: [], result: undefined };
    const { projectId, slot: n } = run.state;
    const [slot] = await load<[Slot]>([{ stream: streamOf.slot(projectId, n), fold: slotDecider }]);
    const now = deps.now();
    if (slot.state.holder !== runId) return { writes: [], result: undefined };
    const leaseExpiresAt = new Date(Date.parse(now) + deps.leaseMs).toISOString();
    return { writes: [{ stream: slot.stream, events: decideSlot({ type: 'RenewLease', projectId, slot: n, runId, leaseExpiresAt, now }, slot.state) }], result: undefined };
  });
  return append !== undefined;
}
