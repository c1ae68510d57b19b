import type { CoreV1Api, V1Namespace } from '@kubernetes/client-node';
import { foldStream, type EventStore } from '../../ports/event-store.js';
import { isTerminal, runDecider } from '../../domain/runs/run.js';
import { streamOf } from '../../domain/shared/streams.js';
import { INSTALLATION_LABEL, MANAGED_BY, runNames } from './run-objects.js';
import { reactor } from '../reactors/reactor.js';

export interface ReaperDeps {
  core: CoreV1Api;
  store: Pick<EventStore, 'readStream'>;
  now: () => number;
  /** CODEXK8S_RUN_NAMESPACE_TTL: how long a finished run's namespace stays (0: it goes at once). */
  ttlMs: number;
  /** How old a managed namespace no run knows must be before it goes (a launch may be under way). */
  orphanGraceMs: number;
  /**
   * This installation's id. A namespace no run of this database knows goes only if it carries this
   * id: another installation sharing the cluster (staging beside production) made the others, and
   * one made before the label existed cannot be told apart (found by a review: staging deleted
   * production's run namespaces after the grace period).
   */
  installation?: string;
}

export interface ReapCounts {
  deleted: number;
  orphans: number;
  kept: number;
}

const selector = Object.entries(MANAGED_BY).map(([k, v]) => `${k}=${v}`).join(',');

/** When the run of this stream ended (its terminal event's time), or undefined while it is active or unknown. */
async function endedAt(store: ReaperDeps['store'], runId: string): Promise<{ known: boolean; endedAt?: number }> {
  const events = await store.readStream(streamOf.run(runId));
  if (events.length === 0) return { known: false };
  if (!isTerminal(foldStream(events, runDecider).state)) return { known: true };
  const last = events.findLast((e) => e.type === 'RunSucceeded' || e.type === 'RunFailed' || e.type === 'RunCanceled');
  return { known: true, endedAt: last?.createdAt.getTime() };
}

/**
 * One pass of the cleanup: deletes each managed namespace whose run ended more than the TTL ago,
 * or that no run knows, this installation made, and is older than the grace period. The run's stream is read again right
 * before each delete, so a namespace is never taken from a run that is (still, or again) active.
 */
export async function reapNamespaces(deps: ReaperDeps): Promise<ReapCounts> {
  const counts: ReapCounts = { deleted: 0, orphans: 0, kept: 0 };
  const { items } = await deps.core.listNamespace({ labelSelector: selector });
  for (const namespace of items as V1Namespace[]) {
    const name = namespace.metadata?.name;
    if (!name || namespace.status?.phase === 'Terminating') continue;
    const runId = namespace.metadata?.labels?.['codex-k8s.io/run'];
    const run = runId ? await endedAt(deps.store, runId) : { known: false };
    const created = new Date(namespace.metadata?.creationTimestamp ?? 0).getTime();
    // A run this database knows is ours whatever the label says (run ids are UUIDs, and a database
    // restored from the log has a new identity); one it does not know is ours only if labelled so.
    const ours = deps.installation === undefined || namespace.metadata?.labels?.[INSTALLATION_LABEL] === deps.installation;
    const orphan = !run.known && ours && deps.now() - created >= deps.orphanGraceMs;
    const expired = run.endedAt !== undefined && deps.now() - run.endedAt >= deps.ttlMs;
    if (!orphan && !expired) {
      counts.kept++;
      continue;
    }
    const again = runId ? await endedAt(deps.store, runId) : { known: false };
    if (expired && again.endedAt === undefined) {
      counts.kept++;
      continue;
    }
    if (!(await deleteNamespace(deps.core, name))) continue; // going or gone already: counted when it was deleted
    if (orphan) counts.orphans++;
    else counts.deleted++;
  }
  return counts;
}

/**
 * Deletes a namespace that may be gone already (404) or going (409: the API server refuses a second
 * delete while the first empties it), so a replayed deletion is done, not an error. True when this
 * call deleted it.
 */
async function deleteNamespace(core: CoreV1Api, name: string): Promise<boolean> {
  try {
    await core.deleteNamespace({ name });
    return true;
  } catch (error) {
    const code = (error as { code?: number }).code;
    if (code !== 404 && code !== 409) throw error;
    return false;
  }
}

/**
 * CODEXK8S_RUN_NAMESPACE_TTL=0: a run's namespace goes as soon as its outcome is recorded, not at the
 * cleanup's next pass; each one it deletes is counted (`onDeleted`) as the cleanup counts its own. A namespace already gone is fine; the periodic cleanup still takes whatever a
 * launch racing the end left behind.
 */
export function namespaceRemover(core: CoreV1Api, onDeleted: () => void = () => {}) {
  return reactor({
    name: 'kubernetes-namespace-remover',
    handles: ['RunSucceeded', 'RunFailed', 'RunCanceled'],
    async react(event) {
      if (event.type !== 'RunSucceeded' && event.type !== 'RunFailed' && event.type !== 'RunCanceled') return;
      if (await deleteNamespace(core, runNames(event.data.runId).namespace)) onDeleted();
    },
  });
}
