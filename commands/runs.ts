import type { EventMeta, EventStore } from '../ports/event-store.js';
import { decideRun, runDecider, type Run } from '../domain/runs/run.js';
import { decideSlot, isFree, slotDecider, type Slot } from '../domain/slots/slot.js';
import { streamOf } from '../domain/shared/streams.js';
import type { GithubActor, RunResult } from '../domain/runs/events.js';
import { handleCommand, type Load, type Write } from './handle-command.js';

export interface RunCommandDeps {
  store: Pick<EventStore, 'append' | 'readStreams'>;
  now: () => string;
  /** How long a slot's lease lasts unless its holder renews it. */
  leaseMs: number;
}

export type Outcome = { type: 'SucceedRun'; result?: RunResult } | { type: 'FailRun'; reason: string } | { type: 'CancelRun'; reason: string; by: GithubActor | null };

/**
 * Schedules a pending run on the first free slot of its project (1…slots; a slot whose lease ran
 * out is free), leasing the slot in the same append at the version read, so two schedulers never
 * lease one slot twice. Undefined when the project is saturated (the run waits).
 */
export async function scheduleRun(deps: RunCommandDeps, runId: string, slots: number, meta: EventMeta): Promise<{ slot: number } | undefined> {
  const { result } = await handleCommand(deps, meta, async (load) => {
    const [run] = await load<[Run]>([{ stream: streamOf.run(runId), fold: runDecider }]);
    if (run.state.status !== 'pending') return { writes: [], result: run.state.status === 'scheduled' || run.state.status === 'running' ? { slot: run.state.slot } : undefined };
    const { projectId } = run.state;
    const now = deps.now();
    const leaseExpiresAt = new Date(Date.parse(now) + deps.leaseMs).toISOString();
    // Every slot in one round trip; only the one taken is guarded (it is written at its version):
    // a busy slot passed over does not matter to the decision.
    const states = await load<Slot[]>(Array.from({ length: slots }, (_, i) => ({ stream: streamOf.slot(projectId, i + 1), fold: slotDecider })), { guard: false });
    for (const [i, slot] of states.entries()) {
      const n = i + 1;
      if (!isFree(slot.state, now)) continue;
      return {
        writes: [
          { stream: run.stream, events: decideRun({ type: 'ScheduleRun', slot: n, leaseExpiresAt, now }, run.state) },
          { stream: slot.stream, events: decideSlot({ type: 'LeaseSlot', projectId, slot: n, runId, leaseExpiresAt, now }, slot.state) },
        ],
        result: { slot: n },
      };
    }
    return { writes: [], result: undefined };
  });
  return result;
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
 * its holder renews, so the slot of a run nobody tracks any more comes back by itself. False when
 * there is nothing to renew or the lease was lost meanwhile.
 */
export async function renewLease(deps: RunCommandDeps, runId: string, meta: EventMeta): Promise<boolean> {
  const { append } = await handleCommand(deps, meta, async (load) => {
    const [run] = await load<[Run]>([{ stream: streamOf.run(runId), fold: runDecider }]);
    if (run.state.status !== 'scheduled' && run.state.status !== 'running') return { writes: [], result: undefined };
    const { projectId, slot: n } = run.state;
    const [slot] = await load<[Slot]>([{ stream: streamOf.slot(projectId, n), fold: slotDecider }]);
    const now = deps.now();
    if (slot.state.holder !== runId || isFree(slot.state, now)) return { writes: [], result: undefined };
    const leaseExpiresAt = new Date(Date.parse(now) + deps.leaseMs).toISOString();
    return { writes: [{ stream: slot.stream, events: decideSlot({ type: 'RenewLease', projectId, slot: n, runId, leaseExpiresAt, now }, slot.state) }], result: undefined };
  });
  return append !== undefined;
}
