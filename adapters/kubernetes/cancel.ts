import type { KubernetesObjectApi, V1Job } from '@kubernetes/client-node';
import { reactor } from '../reactors/reactor.js';
import { outcomeOfJob } from './job-outcomes.js';
import { runNames } from './run-objects.js';

const notFound = (error: unknown) => (error as { code?: number }).code === 404;
const jobOf = (runId: string) => {
  const names = runNames(runId);
  return { apiVersion: 'batch/v1', kind: 'Job', metadata: { name: names.job, namespace: names.namespace } };
};

/** Deletes a run's Job (foreground: its pods first). A Job that is not there is fine. */
async function deleteJob(kube: KubernetesObjectApi, runId: string): Promise<void> {
  try {
    await kube.delete(jobOf(runId), undefined, undefined, undefined, undefined, 'Foreground');
  } catch (error) {
    if (!notFound(error)) throw error;
  }
}

/**
 * Deletes a run's Job if it has not ended; one that has ended is kept, with its pods' logs, until
 * the namespace's TTL. For a run that ended while its Job may still run.
 */
export async function stopJobUnlessEnded(kube: KubernetesObjectApi, runId: string): Promise<void> {
  try {
    if (outcomeOfJob((await kube.read(jobOf(runId))) as V1Job)) return;
  } catch (error) {
    if (notFound(error)) return;
    throw error;
  }
  await deleteJob(kube, runId);
}

/**
 * A run that ended keeps nothing running. On RunCanceled: deletes the run's Job with foreground
 * propagation (its pods go first). On RunFailed: deletes it too if it still runs, as when the
 * platform failed the run itself (its deadline timer, a pod stuck past the grace period: found by a
 * review, the agent kept running with its keys, outside any slot); a Job that failed on its own is
 * kept, with its pods' logs, until the namespace's TTL. A Job that is not there is fine.
 */
export function runCanceler(kube: KubernetesObjectApi) {
  return reactor({
    name: 'kubernetes-canceler',
    handles: ['RunCanceled', 'RunFailed'],
    async react(event) {
      if (event.type === 'RunCanceled') await deleteJob(kube, event.data.runId);
      if (event.type === 'RunFailed') await stopJobUnlessEnded(kube, event.data.runId);
    },
  });
}
