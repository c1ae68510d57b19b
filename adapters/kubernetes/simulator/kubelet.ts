import { randomBytes } from 'node:crypto';
import { kindByName } from './kinds.js';
import { timestamp, type KubeObject, type ObjectStore } from './store.js';

export const outcomes = ['succeed', 'fail', 'image_pull_error', 'crash_loop', 'hang'] as const;
export type Outcome = (typeof outcomes)[number];
export const outcomeAnnotation = 'codex-k8s.io/simulate-outcome';

const jobs = kindByName('Job');
const pods = kindByName('Pod');

/**
 * The Job controller and the kubelet in one: a Job gets one Pod, which moves to the outcome chosen for
 * the simulator (or for the Job, by annotation) after `runSeconds`. Every change is a write to the
 * store, so a watch sees it as a MODIFIED event.
 * `ttlSecondsAfterFinished` is ignored: finished Jobs stay until deleted (the platform must not rely on
 * the TTL controller to learn an outcome anyway).
 */
export class SimulatedKubelet {
  private readonly timers = new Map<string, Set<NodeJS.Timeout>>();

  constructor(private readonly store: ObjectStore, private readonly outcome: Outcome, private readonly runMs: number, private readonly messages: Record<string, string> = {}) {}

  jobCreated(job: KubeObject): void {
    this.later(job, 0, () => this.startPod(job));
    const deadline = job.spec?.activeDeadlineSeconds;
    if (typeof deadline === 'number') this.later(job, deadline * 1000, () => this.deadlinePassed(job));
  }

  /** Stops simulating a Job (it is being deleted). */
  forget(jobUid: string): void {
    for (const t of this.timers.get(jobUid) ?? []) clearTimeout(t);
    this.timers.delete(jobUid);
  }

  close(): void {
    for (const uid of [...this.timers.keys()]) this.forget(uid);
  }

  private outcomeOf(job: KubeObject): Outcome {
    const chosen = job.metadata.annotations?.[outcomeAnnotation];
    return (outcomes as readonly string[]).includes(chosen ?? '') ? (chosen as Outcome) : this.outcome;
  }

  private later(job: KubeObject, ms: number, step: () => void): void {
    const uid = job.metadata.uid;
    const set = this.timers.get(uid) ?? new Set();
    this.timers.set(uid, set);
    const timer = setTimeout(() => {
      set.delete(timer);
      // The Job may have gone, or be going, since this step was planned.
      if (this.liveJob(job)) step();
    }, ms);
    set.add(timer);
  }

  private liveJob(job: KubeObject): KubeObject | undefined {
    const current = this.store.get(jobs, job.metadata.namespace, job.metadata.name);
    return current && current.metadata.uid === job.metadata.uid && !current.metadata.deletionTimestamp && !this.finished(current) ? current : undefined;
  }

  private finished(job: KubeObject): boolean {
    return (job.status?.conditions ?? []).some((c: any) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True');
  }

  private podOf(job: KubeObject): KubeObject | undefined {
    return this.store.list(pods, job.metadata.namespace).find((p) => p.metadata.ownerReferences?.some((o) => o.uid === job.metadata.uid));
  }

  private startPod(job: KubeObject): void {
    const name = job.metadata.name;
    const template = job.spec.template ?? {};
    const pod = this.store.create(pods, {
      metadata: {
        name: `${name}-${randomBytes(3).toString('hex').slice(0, 5)}`,
        namespace: job.metadata.namespace,
        labels: {
          ...template.metadata?.labels,
          'job-name': name,
          'batch.kubernetes.io/job-name': name,
          'controller-uid': job.metadata.uid,
          'batch.kubernetes.io/controller-uid': job.metadata.uid,
        },
        annotations: template.metadata?.annotations,
        ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name, uid: job.metadata.uid, controller: true, blockOwnerDeletion: true }],
      },
      spec: template.spec,
      status: { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'True' }] },
    });
    this.updateJob(job, (j) => ({ ...j, status: { ...j.status, startTime: timestamp(), active: 1 } }));
    const outcome = this.outcomeOf(job);
    if (outcome === 'image_pull_error') {
      this.later(job, this.runMs, () => this.setContainers(pod, 'Pending', { waiting: { reason: 'ImagePullBackOff', message: 'Back-off pulling image' } }, 0));
      return;
    }
    this.later(job, 0, () => this.setContainers(pod, 'Running', { running: { startedAt: timestamp() } }, 0));
    if (outcome === 'succeed' || outcome === 'fail') this.later(job, this.runMs, () => this.finish(job, pod, outcome));
    if (outcome === 'crash_loop') this.later(job, this.runMs, () => this.crash(job, pod, 1));
    // 'hang': Running until deleted or past its deadline.
  }

  private crash(job: KubeObject, pod: KubeObject, restarts: number): void {
    this.setContainers(pod, 'Running', { waiting: { reason: 'CrashLoopBackOff', message: 'back-off restarting failed container' } }, restarts);
    this.later(job, Math.max(this.runMs, 10), () => this.crash(job, pod, restarts + 1));
  }

  private finish(job: KubeObject, pod: KubeObject, outcome: 'succeed' | 'fail'): void {
    const exitCode = outcome === 'succeed' ? 0 : 1;
    const reason = outcome === 'succeed' ? 'Completed' : 'Error';
    this.setContainers(pod, outcome === 'succeed' ? 'Succeeded' : 'Failed', { terminated: { exitCode, reason, finishedAt: timestamp() } }, 0);
    const now = timestamp();
    this.updateJob(job, (j) => ({
      ...j,
      status: outcome === 'succeed'
        ? { ...j.status, active: 0, succeeded: 1, completionTime: now, conditions: [{ type: 'Complete', status: 'True', lastProbeTime: now, lastTransitionTime: now }] }
        : { ...j.status, active: 0, failed: 1, conditions: [{ type: 'Failed', status: 'True', reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit', lastProbeTime: now, lastTransitionTime: now }] },
    }));
    this.forget(job.metadata.uid);
  }

  private deadlinePassed(job: KubeObject): void {
    const pod = this.podOf(job);
    if (pod) {
      const current = this.store.get(pods, pod.metadata.namespace, pod.metadata.name);
      if (current) this.store.update(pods, { ...current, status: { ...current.status, phase: 'Failed', reason: 'DeadlineExceeded' } });
    }
    const now = timestamp();
    this.updateJob(job, (j) => ({
      ...j,
      status: { ...j.status, active: 0, failed: 1, conditions: [{ type: 'Failed', status: 'True', reason: 'DeadlineExceeded', message: 'Job was active longer than specified deadline', lastProbeTime: now, lastTransitionTime: now }] },
    }));
    this.forget(job.metadata.uid);
  }

  private setContainers(pod: KubeObject, phase: string, state: { terminated?: object; waiting?: object; running?: object }, restartCount: number): void {
    const current = this.store.get(pods, pod.metadata.namespace, pod.metadata.name);
    if (!current || current.metadata.deletionTimestamp) return;
    const status = (c: any) => ({
      name: c.name, image: c.image, imageID: '', ready: phase === 'Running' && 'running' in state, started: 'running' in state, restartCount,
      state: 'terminated' in state && this.messages[c.name] !== undefined ? { terminated: { ...(state.terminated as object), message: this.messages[c.name] } } : state,
    });
    const containerStatuses = (current.spec?.containers ?? []).map(status);
    // A finished pod's init containers have finished too (and may have left a message).
    const initContainerStatuses = 'terminated' in state ? (current.spec?.initContainers ?? []).map(status) : current.status?.initContainerStatuses;
    this.store.update(pods, { ...current, status: { ...current.status, phase, containerStatuses, ...(initContainerStatuses ? { initContainerStatuses } : {}), ...(phase === 'Running' && !current.status?.startTime ? { startTime: timestamp() } : {}) } });
  }

  /** Stores the live Job as `change` makes it anew (a stored object is frozen). */
  private updateJob(job: KubeObject, change: (j: KubeObject) => KubeObject): void {
    const current = this.liveJob(job);
    if (current) this.store.update(jobs, change(current));
  }
}
