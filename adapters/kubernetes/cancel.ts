import type { KubernetesObjectApi, V1Job } from '@kubernetes/client-node';
import { reactor } from '../reactors/reactor.js';
import { outcomeOfJob } from './job-outcomes.js';
import { runNames } from './run-objects.js';

const notFound = (error: unknown) => (error as { code?: number }).code === 404;

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
      if (event.type !== 'RunCanceled' && event.type !== 'RunFailed') return;
      const names = runNames(event.data.runId);
      const job = { apiVersion: 'batch/v1', kind: 'Job', metadata: { name: names.job, namespace: names.namespace } };
      try {
        if (event.type === 'RunFailed' && outcomeOfJob((await kube.read(job)) as V1Job)) return;
        await kube.delete(job, undefined, undefined, undefined, undefined, 'Foreground');
      } catch (error) {
        if (!notFound(error)) throw error;
      }
    },
  });
}
