import type pg from 'pg';
import type { BatchV1Api, CoreV1Api, KubeConfig, V1Job, V1Pod } from '@kubernetes/client-node';
import { Watch } from '@kubernetes/client-node';
import type { EventMeta } from '../../ports/event-store.js';
import { endRun, renewLease, type Outcome, type RunCommandDeps } from '../../commands/runs.js';
import { MANAGED_BY } from './run-objects.js';
import { DomainError } from '../../domain/shared/errors.js';
import { sleep } from '../../projections/lease.js';
import { isRight } from 'fp-ts/lib/Either.js';
import { RunResult } from '../../domain/runs/events.js';
import { REDACTED, scrubText, type Logger } from '../log.js';

/** Pod waiting reasons that never resolve by themselves: the run fails after a grace period. */
const STUCK = new Set(['ImagePullBackOff', 'ErrImagePull', 'CrashLoopBackOff', 'CreateContainerConfigError', 'InvalidImageName']);

const selector = Object.entries(MANAGED_BY).map(([k, v]) => `${k}=${v}`).join(',');

/** A Job's outcome, from its conditions only (Complete, Failed); undefined while it runs. */
export function outcomeOfJob(job: V1Job): Outcome | undefined {
  for (const c of job.status?.conditions ?? []) {
    if (c.status !== 'True') continue;
    if (c.type === 'Complete') return { type: 'SucceedRun' };
    if (c.type === 'Failed') return { type: 'FailRun', reason: `job failed: ${c.reason ?? 'unknown'}${c.message ? ` (${c.message.slice(0, 200)})` : ''}` };
  }
  return undefined;
}

/** The publish container's termination message (the runner's JSON result), if it left a well-formed one. */
export function resultOfPods(pods: readonly V1Pod[]): RunResult | undefined {
  for (const pod of pods) {
    const message = pod.status?.containerStatuses?.find((s) => s.name === 'publish')?.state?.terminated?.message;
    if (!message) continue;
    try {
      const decoded = RunResult.decode(JSON.parse(message));
      if (isRight(decoded)) return decoded.right;
    } catch {
      // not JSON: no result to record
    }
  }
  return undefined;
}

/**
 * Why the pod failed, in the runner's own words: the first step (checkout, then agent, then publish)
 * that ended with an error and left one in its termination message (`{"error": …}`). The agent's
 * container can write its own message, and it holds the OpenAI key: the reason goes into the log
 * only with `secrets`, e-mails and token-shaped strings redacted.
 */
export function failureOfPods(pods: readonly V1Pod[], secrets: readonly string[] = []): string | undefined {
  for (const pod of pods) {
    for (const s of [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])]) {
      const ended = s.state?.terminated;
      if (!ended || ended.exitCode === 0 || !ended.message) continue;
      try {
        const error = (JSON.parse(ended.message) as { error?: unknown }).error;
        if (typeof error === 'string' && error.length > 0) {
          const redacted = secrets.filter((secret) => secret.length > 0).reduce((text, secret) => text.split(secret).join(REDACTED), error);
          return `${s.name}: ${scrubText(redacted).slice(0, 500)}`;
        }
      } catch {
        // not the runner's message
      }
    }
  }
  return undefined;
}

/** A pod stuck in a waiting state that does not resolve by itself, and since when it has been. */
export function stuckReason(pod: V1Pod): string | undefined {
  for (const s of [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])]) {
    const reason = s.state?.waiting?.reason;
    if (reason && STUCK.has(reason)) return `${s.name}: ${reason}`;
  }
  return undefined;
}

export interface OutcomeDeps extends Pick<RunCommandDeps, 'store' | 'now'> {
  /** How long a renewed slot lease lasts; each re-list renews the leases of the runs it sees alive. */
  leaseMs?: number;
  /** Where running runs are found (agent_runs on the primary): a suggestion, checked on each run's stream. */
  pool: pg.Pool;
  kubeconfig: KubeConfig;
  batch: BatchV1Api;
  core: CoreV1Api;
  log: Logger;
  meta: EventMeta;
  /** How long a pod may stay stuck (image pull, crash loop) before its run fails. */
  stuckGraceMs: number;
  /** Server-side watch timeout; the watch is then opened again from where it was. */
  watchTimeoutSeconds?: number;
  /** No event for this long (not even a bookmark) means a dead connection: start over. */
  idleMs?: number;
  /** A running run older than this (the Job's own deadline plus a margin) fails, whatever the cluster says. */
  deadlineMs?: number;
  /** How often every managed Job is listed again, whatever the watch says (30 s). */
  resyncMs?: number;
  /** The time of the last watch event (a metric). */
  onWatchEvent?: (at: number) => void;
  /** What a pod's failure reason must never carry into the log (the OpenAI key the agent holds). */
  secrets?: readonly string[];
}

/** How often, and how far apart, an outcome that came before its run's start is tried again. */
const START_WAITS = 10;
const START_WAIT_MS = 300;

/**
 * Job outcomes, from a watch on the managed Jobs across namespaces (with a server-side timeout, a
 * client-side idle deadline, restarts with backoff and jitter, and a fresh list on 410 Gone: the
 * JavaScript client's own informer is known to stop silently after a dropped connection), plus a
 * reconcile that lists every managed Job, so a missed watch event only delays an outcome. Recording
 * an outcome is idempotent: a run that has ended already is left as it is.
 */
export function jobOutcomes(deps: OutcomeDeps) {
  const stuckSince = new Map<string, number>();
  // Runs whose outcome is recorded (by this process or before): a Job's later events and every
  // re-list show it again, and each would cost a pod listing and a read of the run's stream.
  const ended = new Set<string>();
  const MAX_ENDED = 10_000;

  /**
   * Records what a Job says: its outcome, with what its pods reported; or, with `checkPods` (the
   * re-list), whether a pod of a running Job is stuck. A watch event of a running Job lists no pods:
   * a pod stuck waiting changes nothing in its Job, so only the periodic re-list can see it.
   */
  async function record(job: V1Job, options: { checkPods?: boolean; waitForStart?: AbortSignal } = {}): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await recordOnce(job, options);
      } catch (error) {
        // A Job that ended before the launcher recorded its start (a Job of seconds, a busy worker):
        // the start is recorded within moments, so a watch event looks again then (until the watch
        // stops), not at the next re-list. The re-list itself does not wait: it goes through every
        // Job, one after another.
        const early = error instanceof DomainError && error.code === 'failed_precondition';
        if (!early || !options.waitForStart || options.waitForStart.aborted || attempt >= START_WAITS) throw error;
        await sleep(START_WAIT_MS, options.waitForStart);
      }
    }
  }

  async function recordOnce(job: V1Job, { checkPods = true }: { checkPods?: boolean } = {}): Promise<void> {
    const runId = job.metadata?.labels?.['codex-k8s.io/run'];
    if (!runId || ended.has(runId)) return;
    // A run this database knows is recorded whatever its labels say (run ids are UUIDs: no other
    // installation has it, and a database restored from the log has a new identity).
    try {
      await recordKnown(job, runId, checkPods);
    } catch (error) {
      // A Job whose run this database does not know (another installation's sharing the cluster):
      // nothing to record, then or at any later re-list (found by a review: a warning every 30 s).
      if (error instanceof DomainError && error.code === 'not_found') return remember(runId);
      throw error;
    }
  }

  async function recordKnown(job: V1Job, runId: string, checkPods: boolean): Promise<void> {
    const outcome = outcomeOfJob(job);
    const namespace = job.metadata?.namespace;
    if (!outcome && (!checkPods || !namespace)) return;
    const pods = namespace ? await deps.core.listNamespacedPod({ namespace, labelSelector: `job-name=${job.metadata!.name}` }) : { items: [] };
    if (outcome) {
      stuckSince.delete(runId);
      // What publish reported stands on a failed run too: the checkpoint it pushed.
      const result = resultOfPods(pods.items);
      const reported = result ? { result } : {};
      const ending: Outcome = outcome.type === 'SucceedRun' ? { type: 'SucceedRun', ...reported }
        : outcome.type === 'FailRun' ? { type: 'FailRun', reason: failureOfPods(pods.items, deps.secrets) ?? outcome.reason, ...reported }
        : outcome;
      await endRun(deps, runId, ending, deps.meta);
      return remember(runId);
    }
    const stuck = pods.items.map(stuckReason).find(Boolean);
    if (!stuck) return void stuckSince.delete(runId);
    const since = stuckSince.get(runId) ?? Date.now();
    stuckSince.set(runId, since);
    if (Date.now() - since < deps.stuckGraceMs) return;
    await endRun(deps, runId, { type: 'FailRun', reason: `pod stuck: ${stuck}` }, deps.meta);
    stuckSince.delete(runId);
    remember(runId);
  }

  function remember(runId: string): void {
    if (ended.size >= MAX_ENDED) ended.clear();
    ended.add(runId);
  }

  /**
   * Lists every managed Job and records what each says, and fails each running run whose Job is
   * gone (after its outcome was recorded that is normal; before, it is a failure with that reason).
   * Returns the resourceVersion to watch from.
   */
  async function reconcile(): Promise<string | undefined> {
    // The running runs first, then the Jobs: a run seen running had its Job created before its
    // JobStarted, so the list taken after must show it. The other order would miss a Job created
    // between the two reads and fail a healthy run.
    const { rows } = await deps.pool.query<{ id: string; started_ms: number | null }>(
      `SELECT id::text, (extract(epoch FROM started_at) * 1000)::float8 AS started_ms FROM agent_runs WHERE status = 'running'`);
    const list = await deps.batch.listJobForAllNamespaces({ labelSelector: selector });
    for (const job of list.items) await record(job).catch((error: unknown) => deps.log.warn({ err: error }, 'recording a job outcome failed'));
    const present = new Set(list.items.map((j) => j.metadata?.labels?.['codex-k8s.io/run']));
    for (const { id, started_ms } of rows) {
      if (deps.deadlineMs !== undefined && started_ms !== null && Date.now() - started_ms > deps.deadlineMs) {
        // The timer behind the Job's activeDeadlineSeconds: the run ends even if the cluster never says.
        await endRun(deps, id, { type: 'FailRun', reason: 'deadline exceeded' }, deps.meta).catch((error: unknown) => deps.log.warn({ err: error }, 'failing a run past its deadline failed'));
        continue;
      }
      if (present.has(id)) {
        if (deps.leaseMs) await renewLease({ ...deps, leaseMs: deps.leaseMs }, id, deps.meta).catch((error: unknown) => deps.log.warn({ err: error }, 'renewing a slot lease failed'));
        continue;
      }
      // The read model only suggests: endRun decides on the run's stream (a run that ended meanwhile is left as it is).
      await endRun(deps, id, { type: 'FailRun', reason: 'job gone before its outcome was recorded' }, deps.meta).catch((error: unknown) => deps.log.warn({ err: error }, 'failing a run without a job failed'));
    }
    return list.metadata?.resourceVersion;
  }

  /**
   * Watches until `signal` aborts, starting over (with a fresh list) whenever the watch ends, and
   * lists everything again every `resyncMs` (a pod stuck in a waiting state changes no Job).
   */
  async function watch(signal: AbortSignal): Promise<void> {
    const watcher = new Watch(deps.kubeconfig);
    let backoff = 200;
    const resync = setInterval(() => void reconcile().catch((error: unknown) => deps.log.warn({ err: error }, 'periodic job reconcile failed')), deps.resyncMs ?? 30_000);
    signal.addEventListener('abort', () => clearInterval(resync), { once: true });
    while (!signal.aborted) {
      try {
        let resourceVersion = await reconcile();
        await new Promise<void>((resolve, reject) => {
          let idle: NodeJS.Timeout | undefined;
          let request: AbortController | undefined;
          let finished = false;
          const finish = (error?: unknown) => {
            finished = true;
            clearTimeout(idle);
            signal.removeEventListener('abort', stop);
            request?.abort();
            if (error) reject(error);
            else resolve();
          };
          const stop = () => finish();
          // The idle deadline starts with the watch; the metric moves with events only (a watch that
          // starts over, again and again, is no sign of life: found by a review).
          const touch = (event: boolean) => {
            clearTimeout(idle);
            idle = setTimeout(() => finish(new Error('the watch went quiet')), deps.idleMs ?? 120_000);
            if (event) deps.onWatchEvent?.(Date.now());
          };
          signal.addEventListener('abort', stop, { once: true });
          touch(false);
          watcher
            .watch(
              '/apis/batch/v1/jobs',
              { labelSelector: selector, resourceVersion, allowWatchBookmarks: true, timeoutSeconds: deps.watchTimeoutSeconds ?? 300 },
              (phase: string, object: V1Job & { code?: number }) => {
                touch(true);
                if (phase === 'ERROR') return finish(new Error(`watch error ${object.code ?? ''}`)); // 410 Gone: list again
                resourceVersion = object.metadata?.resourceVersion ?? resourceVersion;
                if (phase === 'ADDED' || phase === 'MODIFIED') void record(object, { checkPods: false, waitForStart: signal }).catch((error: unknown) => deps.log.warn({ err: error }, 'recording a job outcome failed'));
              },
              (error: unknown) => finish(error ?? undefined),
            )
            // A watch that ended (a stop, the idle deadline) before its answer came is aborted on arrival,
            // or it would stream on beside the next one.
            .then((controller) => {
              request = controller;
              if (finished) controller.abort();
            }, finish);
        });
        backoff = 200;
      } catch (error) {
        if (signal.aborted) break;
        deps.log.warn({ err: error }, 'job watch ended; starting over');
        await new Promise((r) => setTimeout(r, backoff * (0.5 + Math.random())));
        backoff = Math.min(backoff * 2, 10_000);
      }
    }
  }

  return { record, reconcile, watch };
}
