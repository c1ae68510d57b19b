import type { KubernetesObjectApi } from '@kubernetes/client-node';
import { reactor } from '../reactors/reactor.js';
import { runNames } from './run-objects.js';

/**
 * On RunCanceled: deletes the run's Job with foreground propagation (its pods go first), so a
 * canceled run keeps nothing running; a Job that is not there (never created, or gone) is fine.
 * The namespace stays until the cleanup's TTL.
 */
export function runCanceler(kube: KubernetesObjectApi) {
  return reactor({
    name: 'kubernetes-canceler',
    handles: ['RunCanceled'],
    async react(event) {
      if (event.type !== 'RunCanceled') return;
      const names = runNames(event.data.runId);
      try {
        await kube.delete({ apiVersion: 'batch/v1', kind: 'Job', metadata: { name: names.job, namespace: names.namespace } }, undefined, undefined, undefined, undefined, 'Foreground');
      } catch (error) {
        if ((error as { code?: number }).code !== 404) throw error;
      }
    },
  });
}
