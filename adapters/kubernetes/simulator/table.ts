import type { KubeObject } from './store.js';

/** `kubectl get` asks for a server-side Table (Accept: ...;as=Table;g=meta.k8s.io); plain JSON otherwise. */
export const wantsTable = (accept: string | undefined): boolean => /as=Table/.test(accept ?? '') && /g=meta\.k8s\.io/.test(accept ?? '');

function age(created: string): string {
  const s = Math.max(0, Math.floor((Date.now() - Date.parse(created)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  return `${Math.floor(s / 3600)}h`;
}

function jobStatus(job: KubeObject): string {
  const c = (job.status?.conditions ?? []).find((x: any) => x.status === 'True' && (x.type === 'Complete' || x.type === 'Failed'));
  if (c) return c.type;
  return job.metadata.deletionTimestamp ? 'Terminating' : 'Running';
}

function podStatus(pod: KubeObject): string {
  if (pod.metadata.deletionTimestamp) return 'Terminating';
  const waiting = pod.status?.containerStatuses?.find((s: any) => s.state?.waiting)?.state.waiting.reason;
  return waiting ?? pod.status?.phase ?? 'Pending';
}

/** A meta.k8s.io/v1 Table of the objects, with the status columns that matter for runs. */
export function asTable(kind: string, objects: KubeObject[], resourceVersion: string): unknown {
  const extra: { name: string; cell: (o: KubeObject) => string | number }[] =
    kind === 'Job' ? [{ name: 'Status', cell: jobStatus }, { name: 'Completions', cell: (o) => `${o.status?.succeeded ?? 0}/${o.spec?.completions ?? 1}` }]
      : kind === 'Pod' ? [{ name: 'Status', cell: podStatus }, { name: 'Restarts', cell: (o) => o.status?.containerStatuses?.[0]?.restartCount ?? 0 }]
        : kind === 'Namespace' ? [{ name: 'Status', cell: (o) => o.status?.phase ?? 'Active' }]
          : [];
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: { resourceVersion },
    columnDefinitions: [
      { name: 'Name', type: 'string', format: 'name', description: 'Name', priority: 0 },
      ...extra.map((e) => ({ name: e.name, type: 'string', format: '', description: e.name, priority: 0 })),
      { name: 'Age', type: 'string', format: '', description: 'Age', priority: 0 },
    ],
    rows: objects.map((o) => ({
      cells: [o.metadata.name, ...extra.map((e) => e.cell(o)), age(o.metadata.creationTimestamp)],
      object: { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata },
    })),
  };
}
