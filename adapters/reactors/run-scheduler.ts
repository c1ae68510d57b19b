import type pg from 'pg';
import { scheduleRun, scheduleRuns, type RunCommandDeps } from '../../commands/runs.js';
import { readCheckpoint } from '../../projections/checkpoints.js';
import { GlobalPosition } from '../../ports/position.js';
import { sleep } from '../../projections/lease.js';
import type { Logger } from '../log.js';
import { foldStream, type EventMeta, type EventStore, type RecordedEvent } from '../../ports/event-store.js';
import type { DomainEvent } from '../../domain/events.js';
import { projectDecider } from '../../domain/projects/project.js';
import { streamOf } from '../../domain/shared/streams.js';
import { reactor } from './reactor.js';

export interface SchedulerDeps extends RunCommandDeps {
  store: RunCommandDeps['store'] & Pick<EventStore, 'readStream'>;
  /** Where pending runs are found (agent_runs on the primary): a suggestion; the streams decide. */
  pool: pg.Pool;
  /** Slots per project (CODEXK8S_SLOTS_PER_PROJECT), unless the project set its own. */
  slotsPerProject: number;
  /** How long a released slot waits for agent_runs to have seen the runs requested before it. */
  readWaitMs?: number;
}

/**
 * Starts runs on free slots: a requested run is scheduled at once if its project has a free slot;
 * when a slot is released, the project's oldest pending runs are tried in order until one takes it.
 * The read model only suggests which runs wait; each is scheduled on its run and slot streams, so a
 * stale suggestion schedules nothing twice. A saturated project only costs its own events: another
 * project's runs are scheduled when their own events come.
 */
type RunRequestedEvent = RecordedEvent<DomainEvent> & { type: 'RunRequested' };
const isRunRequested = (event: RecordedEvent<DomainEvent>): event is RunRequestedEvent => event.type === 'RunRequested';
/** Like Promise.all, but rejects only once every one has settled: nothing outlives the reaction. */
async function allSettled(work: Promise<unknown>[]): Promise<void> {
  const results = await Promise.allSettled(work);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

export function runScheduler(deps: SchedulerDeps) {
  // Where agent_runs must have got to before it shows every run left waiting for a slot: the newest
  // request this scheduler left waiting in each project and, for runs an earlier process left
  // waiting, the first event this one handled. A project with free slots left nothing waiting, so a
  // release there does not wait on the read model.
  let firstSeen: GlobalPosition | undefined;
  const leftWaiting = new Map<string, GlobalPosition>();
  // Projects where nothing waits for a slot, as far as this lease knows: a release there has nobody
  // to start, so it asks nothing (in a burst, releases come between the requests, and asking the
  // read model and every slot at each one held the requests back). A project is settled when a
  // complete look at its pending runs left none waiting, and unsettled when a request is left waiting.
  const settled = new Set<string>();
  // Whether this process holds the scheduler's lease: only the holder looks for expired leases.
  let holding = false;
  const seen = (position: GlobalPosition) => (firstSeen ??= position);
  const waitingFrom = (projectId: string, position: GlobalPosition) => {
    settled.delete(projectId);
    const known = leftWaiting.get(projectId);
    if (!known || position.compare(known) > 0) leftWaiting.set(projectId, position);
  };
  const mustSee = (projectId: string): GlobalPosition => {
    const left = leftWaiting.get(projectId);
    // Nothing reacted to yet (a look for expired leases): nothing this scheduler knows to wait for.
    const first = firstSeen ?? GlobalPosition.start;
    return left && left.compare(first) > 0 ? left : first;
  };

  const PENDING_LIMIT = 20;
  /**
   * The project's oldest pending runs but those `tried`, and whether that is all of them (the read
   * model had caught up by `deadline`, and there were no more).
   */
  async function oldestPending(projectId: string, afterPosition: GlobalPosition, tried: readonly string[], deadline: number): Promise<{ ids: string[]; complete: boolean }> {
    // Wait (bounded) until agent_runs has applied the log up to there, so every run left waiting is
    // visible as pending.
    let caughtUp = false;
    for (;;) {
      const checkpoint = await readCheckpoint(deps.pool, 'agent_runs');
      caughtUp = checkpoint?.position.isAtOrAfter(afterPosition) ?? false;
      if (!checkpoint || caughtUp || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const { rows } = await deps.pool.query<{ id: string }>(
      `SELECT id::text FROM agent_runs WHERE project_id = $1 AND status = 'pending' AND id <> ALL($2::uuid[]) ORDER BY created_at, id LIMIT ${PENDING_LIMIT}`,
      [projectId, tried],
    );
    return { ids: rows.map((r) => r.id), complete: caughtUp && rows.length < PENDING_LIMIT };
  }

  /** The project's own slot count, from its stream, else the platform's. */
  async function slotsOf(projectId: string): Promise<number> {
    const project = foldStream(await deps.store.readStream(streamOf.project(projectId)), projectDecider).state;
    return (project.status === 'active' ? project.slots : null) ?? deps.slotsPerProject;
  }

  /** Requested runs, scheduled per project at once; those without a free slot are left waiting. */
  async function requested(events: RunRequestedEvent[], metaOf: (event: RecordedEvent<DomainEvent>) => EventMeta): Promise<void> {
    const byProject = new Map<string, RunRequestedEvent[]>();
    for (const event of events) {
      const list = byProject.get(event.data.projectId) ?? [];
      if (list.length === 0) byProject.set(event.data.projectId, list);
      list.push(event);
    }
    await allSettled([...byProject].map(([projectId, requested]) => {
      const byRun = new Map(requested.map((e) => [e.data.runId, e]));
      const newest = requested.at(-1)!.position;
      return schedulingRequests(projectId, newest, async () => {
        const waiting = await scheduleRuns(deps, projectId, [...byRun.keys()], await slotsOf(projectId), (runId) => metaOf(byRun.get(runId)!));
        for (const runId of waiting) waitingFrom(projectId, byRun.get(runId)!.position);
        return waiting.length === 0;
      });
    }));
  }

  /**
   * While a request is being scheduled its project is not settled, and stays so if the reaction
   * fails (it is retried, or parked, leaving the run pending): the next release looks again.
   */
  async function schedulingRequests(projectId: string, position: GlobalPosition, schedule: () => Promise<boolean>): Promise<void> {
    const wasSettled = settled.delete(projectId);
    let none: boolean;
    try {
      none = await schedule();
    } catch (error) {
      waitingFrom(projectId, position); // it may be left pending: a look must see it
      throw error;
    }
    if (none && wasSettled) settled.add(projectId);
  }

  /**
   * A slot released in the project: its oldest pending runs take what is free, unless nothing waits
   * there. `settle: false` is a look from outside the reactions (expiredLeases), which may have read
   * the read model before a request a reaction leaves waiting: it never marks the project settled.
   */
  async function released(projectId: string, meta: () => EventMeta, { settle = true } = {}): Promise<void> {
    if (settle && settled.has(projectId)) return;
    const slots = await slotsOf(projectId);
    // A look takes at most PENDING_LIMIT runs: as many looks as it takes to fill what is free (many
    // releases are reacted to as one), each past the runs tried before, which the read model may
    // still call pending.
    const tried: string[] = [];
    const deadline = Date.now() + (deps.readWaitMs ?? 2000);
    for (;;) {
      // The read model may still call runs pending that were scheduled meanwhile: one read of all of
      // them and the slots tells, and the oldest pending take what is free.
      const candidates = await oldestPending(projectId, mustSee(projectId), tried, deadline);
      tried.push(...candidates.ids);
      const waiting = candidates.ids.length === 0 ? [] : await scheduleRuns(deps, projectId, candidates.ids, slots, meta);
      if (waiting.length > 0) return; // the slots are taken again: the rest wait
      if (candidates.complete) {
        if (settle) settled.add(projectId);
        return;
      }
      if (candidates.ids.length < PENDING_LIMIT) return; // the read model is behind: the next release looks again
    }
  }

  /**
   * Runs waiting behind slots whose leases ran out (the worker that renewed them died, or could not
   * reach the cluster for the whole lease): no event says a lease ended, so this looks for them, and
   * each such project's oldest pending runs take what is free, as after a release. The read models
   * only point at the projects; the slot and run streams decide. Returns the projects looked at.
   */
  async function expiredLeases(meta: EventMeta): Promise<string[]> {
    const { rows } = await deps.pool.query<{ project_id: string; first_expired: number }>(
      `SELECT r.project_id::text AS project_id, min(s.slot) AS first_expired
         FROM (SELECT DISTINCT project_id FROM agent_runs WHERE status = 'pending') r
         JOIN slots s ON s.project_id = r.project_id AND s.run_id IS NOT NULL AND s.lease_expires_at <= $1
        GROUP BY r.project_id`,
      [deps.now()],
    );
    const projects: string[] = [];
    // One project at a time: after an outage every project may be here, on every worker.
    for (const { project_id: projectId, first_expired: firstExpired } of rows) {
      // A slot above the project's count now (it was given fewer) is not one its runs may take.
      if (firstExpired > (await slotsOf(projectId))) continue;
      projects.push(projectId);
      await released(projectId, () => meta, { settle: false });
    }
    return projects;
  }

  return Object.assign(reactor({
    name: 'run-scheduler',
    // More slots for a project (ProjectSlotsSet) start its waiting runs as a release would.
    handles: ['RunRequested', 'SlotReleased', 'ProjectSlotsSet'],
    leased() {
      firstSeen = undefined;
      leftWaiting.clear();
      settled.clear();
      holding = true;
    },
    unleased() {
      holding = false;
    },
    // A burst: each project's requested runs are scheduled with one read and one group commit, and
    // the releases between them cost one look per project (none where nothing waits), all under one
    // checkpoint.
    together: {
      handles: ['RunRequested', 'SlotReleased'],
      async react(events, { metaOf }) {
        seen(events[0]!.position);
        // In log order, a stretch of one type at a time: a slot released before a newer request goes
        // to the runs that were waiting before it.
        for (let i = 0; i < events.length;) {
          let end = i + 1;
          while (end < events.length && events[end]!.type === events[i]!.type) end++;
          const stretch = events.slice(i, end);
          i = end;
          if (stretch[0]!.type === 'RunRequested') {
            await requested(stretch.filter(isRunRequested), metaOf);
            continue;
          }
          const firstRelease = new Map<string, RecordedEvent<DomainEvent>>();
          for (const event of stretch) if (event.type === 'SlotReleased' && !firstRelease.has(event.data.projectId)) firstRelease.set(event.data.projectId, event);
          await allSettled([...firstRelease].map(([projectId, event]) => released(projectId, () => metaOf(event))));
        }
      },
    },
    async react(event, { meta }) {
      seen(event.position);
      if (event.type === 'RunRequested') {
        const { projectId, runId } = event.data;
        await schedulingRequests(projectId, event.position, async () => {
          if (await scheduleRun(deps, runId, await slotsOf(projectId), meta)) return true;
          waitingFrom(projectId, event.position);
          return false;
        });
        return;
      }
      if (event.type === 'SlotReleased' || event.type === 'ProjectSlotsSet') await released(event.data.projectId, () => meta);
    },
  }), { expiredLeases, holding: () => holding });
}

/** While this process holds the scheduler's lease, looks for runs waiting behind expired leases every `everyMs` (30 s; a lease lasts at least a minute) until `signal` aborts. */
export async function lookForExpiredLeases(scheduler: ReturnType<typeof runScheduler>, options: { signal: AbortSignal; log: Logger; everyMs?: number }): Promise<void> {
  const meta: EventMeta = { correlationId: 'expired-slot-leases', actor: { type: 'system', id: scheduler.name } };
  while (!options.signal.aborted) {
    await sleep(options.everyMs ?? 30_000, options.signal);
    if (options.signal.aborted) break;
    // A standby would only repeat the holder's looks (safely: the streams decide).
    if (!scheduler.holding()) continue;
    try {
      const projects = await scheduler.expiredLeases(meta);
      if (projects.length > 0) options.log.info({ projects: projects.length }, 'runs waiting behind expired slot leases were looked at');
    } catch (error) {
      options.log.warn({ err: error }, 'looking for expired slot leases failed; trying again later');
    }
  }
}
