import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { apiVersionOf, findResource, kindByName, nameProblem, resourceKey, resourceKinds, semanticProblems, type ResourceKind } from './kinds.js';
import { matchesLabels, parseFieldSelector, parseLabelSelector, SelectorError } from './label-selector.js';
import { ObjectStore, timestamp, type KubeObject, type StoredEvent } from './store.js';
import { SimulatedKubelet, type Outcome } from './kubelet.js';
import { kubeconfigFor } from './kubeconfig.js';
import { asTable, wantsTable } from './table.js';

export interface KubeSimulatorOptions {
  port?: number;
  host?: string;
  outcome?: Outcome;
  /** How long a simulated pod runs before its outcome (default 1). */
  runSeconds?: number;
  /** How many changes a watch can resume from (default 1000); older is 410 Gone. */
  historyLimit?: number;
  /** How often a watch that allows bookmarks gets one (default 5000 ms). */
  bookmarkIntervalMs?: number;
  /** Termination messages a finished pod's containers leave, by container name (as a step of the runner writes one). */
  terminationMessages?: Record<string, string>;
  /** How long a deleted namespace stays Terminating before it and its content are gone (default 20 ms). */
  namespaceTerminatingMs?: number;
}

export interface KubeSimulatorState {
  /** API creates per kind (what clients asked for, not what the simulated controllers made). */
  creates: Record<string, number>;
  deletes: Record<string, number>;
  /** The objects of a kind as stored now. */
  objects(kind: string, namespace?: string): KubeObject[];
  resourceVersion(): number;
  /** TCP connections accepted so far (how well a client reuses its connections). */
  connections(): number;
}

export interface KubeSimulator {
  /** Test faults: every watch open now stops sending (its connection stays open), or is cut. */
  muteWatches(): void;
  dropWatches(): void;
  /** Test fault: the next `count` creates are shed as an overloaded API server does (429 with Retry-After). */
  shedCreates(count: number, retryAfterSeconds?: number): void;
  url: string;
  port: number;
  kubeconfig(): string;
  state: KubeSimulatorState;
  close(): Promise<void>;
}

const namespaces = kindByName('Namespace');
const jobs = kindByName('Job');
const pods = kindByName('Pod');

class ApiError extends Error {
  constructor(readonly code: number, readonly reason: string, message: string, readonly details?: object) {
    super(message);
  }
}

const status = (code: number, reason: string, message: string, details?: object) =>
  ({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: code < 400 ? 'Success' : 'Failure', message, reason, ...(details ? { details } : {}), code });

const notFound = (r: ResourceKind, name: string) =>
  new ApiError(404, 'NotFound', `${resourceKey(r)} "${name}" not found`, { name, group: r.group, kind: r.plural });

function send(res: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function readJson(req: IncomingMessage): Promise<any> {
  const type = req.headers['content-type'] ?? 'application/json';
  if (!/json/.test(type)) {
    // kubectl's typed commands (`kubectl create namespace`) send protobuf; their manifests (`-f`) go as JSON.
    throw new ApiError(415, 'UnsupportedMediaType', `the simulator takes JSON bodies, not ${type}`);
  }
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  if (!text.trim()) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw new ApiError(400, 'BadRequest', 'the request body is not JSON (the simulator does not take YAML or protobuf)');
  }
}

/** What a resource URL names: /api/v1/[namespaces/NS/]PLURAL[/NAME[/SUBRESOURCE]] or the same under /apis/GROUP/VERSION. */
interface Target { resource: ResourceKind; namespace?: string; name?: string; subresource?: string }

function parseTarget(group: string, version: string, segments: string[]): Target | undefined {
  if (segments[0] === 'namespaces' && segments.length >= 3) {
    const resource = findResource(group, version, segments[2]!);
    if (resource?.namespaced) return { resource, namespace: segments[1], name: segments[3], subresource: segments[4] };
  }
  const resource = findResource(group, version, segments[0] ?? '');
  if (!resource || segments.length > 3) return undefined;
  return { resource, name: segments[1], subresource: segments[2] };
}

function discovery(path: string, host: string): unknown | undefined {
  const groups = [...new Set(resourceKinds.filter((r) => r.group).map((r) => r.group))];
  const resourceList = (group: string, version: string) => ({
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: group ? `${group}/${version}` : version,
    resources: resourceKinds.filter((r) => r.group === group && r.version === version).flatMap((r) => [
      { name: r.plural, singularName: r.singular, namespaced: r.namespaced, kind: r.kind, verbs: ['create', 'delete', 'get', 'list', 'watch'], ...(r.shortNames.length ? { shortNames: r.shortNames } : {}) },
      ...(r.kind === 'Job' || r.kind === 'Pod' || r.kind === 'Namespace' ? [{ name: `${r.plural}/status`, singularName: '', namespaced: r.namespaced, kind: r.kind, verbs: ['get'] }] : []),
    ]),
  });
  if (path === '/version') {
    return { major: '1', minor: '33', gitVersion: 'v1.33.0-codexk8s-simulator', gitCommit: '', gitTreeState: 'clean', buildDate: '2026-01-01T00:00:00Z', goVersion: 'go1.24', compiler: 'gc', platform: 'linux/amd64' };
  }
  if (path === '/api') return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: host }] };
  if (path === '/api/v1') return resourceList('', 'v1');
  if (path === '/apis') {
    return {
      kind: 'APIGroupList', apiVersion: 'v1',
      groups: groups.map((name) => ({ name, versions: [{ groupVersion: `${name}/v1`, version: 'v1' }], preferredVersion: { groupVersion: `${name}/v1`, version: 'v1' } })),
    };
  }
  const m = /^\/apis\/([^/]+)(?:\/([^/]+))?$/.exec(path);
  if (m && groups.includes(m[1]!)) {
    if (!m[2]) return { kind: 'APIGroup', apiVersion: 'v1', name: m[1], versions: [{ groupVersion: `${m[1]}/v1`, version: 'v1' }], preferredVersion: { groupVersion: `${m[1]}/v1`, version: 'v1' } };
    if (m[2] === 'v1') return resourceList(m[1]!, 'v1');
  }
  return undefined;
}

/** Starts an in-memory Kubernetes API server: the kinds of kinds.ts, Jobs run by the simulated kubelet of kubelet.ts. */
export async function startKubeSimulator(options: KubeSimulatorOptions = {}): Promise<KubeSimulator> {
  const store = new ObjectStore(options.historyLimit ?? 1000);
  const kubelet = new SimulatedKubelet(store, options.outcome ?? 'succeed', (options.runSeconds ?? 1) * 1000, options.terminationMessages ?? {});
  const bookmarkMs = options.bookmarkIntervalMs ?? 5000;
  const creates: Record<string, number> = {};
  let connections = 0;
  const deletes: Record<string, number> = {};
  const pending = new Set<NodeJS.Timeout>();
  const closers = new Set<() => void>();
  // Faults for tests: watches open now go silent (a half-dead connection) or are cut.
  let shed = { left: 0, retryAfterSeconds: 1 };
  const muters = new Set<() => void>();
  const droppers = new Set<() => void>();
  const soon = (step: () => void, ms = 0) => {
    const t = setTimeout(() => { pending.delete(t); step(); }, ms);
    pending.add(t);
  };
  for (const name of ['default', 'kube-system', 'kube-public']) createObject(namespaces, undefined, { metadata: { name } }, false);

  function createObject(r: ResourceKind, namespace: string | undefined, body: any, count = true): KubeObject {
    if (!body || typeof body !== 'object') throw new ApiError(400, 'BadRequest', 'the request has no object');
    body = { ...body, apiVersion: body.apiVersion ?? apiVersionOf(r), kind: body.kind ?? r.kind, metadata: { ...body.metadata } };
    if (body.apiVersion !== apiVersionOf(r) || body.kind !== r.kind) {
      throw new ApiError(400, 'BadRequest', `the object is a ${body.apiVersion}/${body.kind}, not a ${apiVersionOf(r)}/${r.kind}`);
    }
    if (r.namespaced) {
      if (body.metadata.namespace !== undefined && body.metadata.namespace !== namespace) {
        throw new ApiError(400, 'BadRequest', 'the namespace of the provided object does not match the namespace sent on the request');
      }
      body.metadata.namespace = namespace;
    }
    if (!body.metadata.name && body.metadata.generateName) body.metadata.name = `${body.metadata.generateName}${randomBytes(3).toString('hex').slice(0, 5)}`;
    const name: string = body.metadata.name ?? '';
    const causes: { field: string; message: string }[] = [];
    if (!name) causes.push({ field: 'metadata.name', message: 'Required value: name or generateName is required' });
    else {
      const problem = nameProblem(r, name);
      if (problem) causes.push({ field: 'metadata.name', message: `Invalid value: "${name}": ${problem}` });
    }
    try {
      r.validate(body);
    } catch (error) {
      causes.push({ field: '', message: (error as Error).message });
    }
    for (const p of semanticProblems(r, body)) causes.push({ field: p.split(':')[0]!, message: p });
    if (causes.length > 0) {
      throw new ApiError(422, 'Invalid', `${r.kind} "${name}" is invalid: ${causes.map((c) => c.message).join('; ')}`, { name, group: r.group, kind: r.kind, causes });
    }
    if (r.namespaced) {
      const ns = store.get(namespaces, undefined, namespace!);
      if (!ns) throw new ApiError(404, 'NotFound', `namespaces "${namespace}" not found`, { name: namespace, kind: 'namespaces' });
      if (ns.metadata.deletionTimestamp) throw new ApiError(403, 'Forbidden', `unable to create new content in namespace ${namespace} because it is being terminated`);
    }
    if (store.get(r, namespace, name)) {
      throw new ApiError(409, 'AlreadyExists', `${resourceKey(r)} "${name}" already exists`, { name, group: r.group, kind: r.plural });
    }
    const object = store.create(r, withDefaults(r, body), r.kind === 'Job' ? jobSelector : undefined);
    if (count) creates[r.kind] = (creates[r.kind] ?? 0) + 1;
    return object;
  }

  function withDefaults(r: ResourceKind, body: any): any {
    if (r.kind === 'Namespace') {
      return { ...body, metadata: { ...body.metadata, labels: { ...body.metadata.labels, 'kubernetes.io/metadata.name': body.metadata.name } }, spec: { finalizers: ['kubernetes'] }, status: { phase: 'Active' } };
    }
    if (r.kind === 'Job') {
      return { ...body, spec: { backoffLimit: 6, completions: 1, parallelism: 1, completionMode: 'NonIndexed', suspend: false, ...body.spec }, status: {} };
    }
    if (r.kind === 'Pod') return { ...body, status: { phase: 'Pending', ...body.status } };
    return body;
  }

  /** Like the Job controller: its pods are selected by the Job's uid (labels also set on the template). */
  function jobSelector(job: KubeObject): KubeObject {
    const labels = { 'batch.kubernetes.io/controller-uid': job.metadata.uid, 'batch.kubernetes.io/job-name': job.metadata.name, 'controller-uid': job.metadata.uid, 'job-name': job.metadata.name };
    const template = job.spec.template ?? {};
    return {
      ...job,
      spec: {
        ...job.spec,
        selector: job.spec.selector ?? { matchLabels: { 'batch.kubernetes.io/controller-uid': job.metadata.uid } },
        template: { ...template, metadata: { ...template.metadata, labels: { ...template.metadata?.labels, ...labels } } },
      },
    };
  }

  function deleteObject(r: ResourceKind, namespace: string | undefined, name: string, propagation: string | undefined): KubeObject {
    const current = store.get(r, namespace, name);
    if (!current) throw notFound(r, name);
    deletes[r.kind] = (deletes[r.kind] ?? 0) + 1;
    if (r.kind === 'Namespace') return deleteNamespace(current);
    if (r.kind === 'Job') return deleteJob(current, propagation);
    return store.remove(r, namespace, name)!;
  }

  /** Like the namespace controller: Terminating at once, then its content, then the namespace itself. */
  function deleteNamespace(ns: KubeObject): KubeObject {
    if (ns.metadata.deletionTimestamp) {
      // As the API server answers a second delete while the first one empties the namespace.
      throw new ApiError(409, 'Conflict', `Operation cannot be fulfilled on namespaces "${ns.metadata.name}": The system is ensuring all content is removed from this namespace.  Upon completion, this namespace will automatically be purged by the system.`, { name: ns.metadata.name, kind: 'namespaces' });
    }
    const terminating = store.update(namespaces, { ...ns, metadata: { ...ns.metadata, deletionTimestamp: timestamp() }, status: { phase: 'Terminating' } });
    soon(() => {
      for (const r of resourceKinds.filter((k) => k.namespaced)) {
        for (const o of store.list(r, ns.metadata.name)) {
          if (r.kind === 'Job') kubelet.forget(o.metadata.uid);
          store.remove(r, ns.metadata.name, o.metadata.name);
        }
      }
      store.remove(namespaces, undefined, ns.metadata.name);
    }, options.namespaceTerminatingMs ?? 20); // Terminating for a moment, as while the namespace controller empties it
    return terminating;
  }

  /**
   * Jobs default to orphaning their pods when deleted through the API (batch/v1's legacy default), so a
   * caller that wants the pods gone says Background or Foreground. Foreground: the Job stays, marked
   * with a deletionTimestamp and the foregroundDeletion finalizer, until its pods are gone.
   */
  function deleteJob(job: KubeObject, propagation: string | undefined): KubeObject {
    kubelet.forget(job.metadata.uid);
    const ownedPods = () => store.list(pods, job.metadata.namespace).filter((p) => p.metadata.ownerReferences?.some((o) => o.uid === job.metadata.uid));
    const removePods = () => { for (const p of ownedPods()) store.remove(pods, p.metadata.namespace, p.metadata.name); };
    if (propagation === 'Foreground') {
      if (job.metadata.deletionTimestamp) return job;
      const marked = store.update(jobs, { ...job, metadata: { ...job.metadata, deletionTimestamp: timestamp(), finalizers: [...(job.metadata.finalizers ?? []), 'foregroundDeletion'] } });
      soon(() => {
        removePods();
        soon(() => store.remove(jobs, job.metadata.namespace, job.metadata.name));
      }, 10);
      return marked;
    }
    const removed = store.remove(jobs, job.metadata.namespace, job.metadata.name)!;
    if (propagation === 'Background') soon(removePods);
    return removed;
  }

  function watch(req: IncomingMessage, res: ServerResponse, r: ResourceKind, namespace: string | undefined, query: URLSearchParams): void {
    const labels = parseLabelSelector(query.get('labelSelector'));
    const fields = parseFieldSelector(query.get('fieldSelector'));
    const matches = (e: StoredEvent) => e.key === resourceKey(r) && (namespace === undefined || e.namespace === namespace)
      && matchesLabels(labels, e.object.metadata.labels) && fields(e.object);
    const rvParam = query.get('resourceVersion');
    let backlog: StoredEvent[];
    if (!rvParam || rvParam === '0') {
      // "Start at the most recent": the current objects as ADDED, then what changes.
      backlog = store.list(r, namespace).map((object) => ({ rv: Number(object.metadata.resourceVersion), key: resourceKey(r), namespace: object.metadata.namespace, type: 'ADDED' as const, object }));
    } else {
      const rv = Number(rvParam);
      const since = Number.isInteger(rv) ? store.since(rv) : undefined;
      if (!since) {
        const oldest = store.oldestResumable;
        send(res, 410, status(410, 'Expired', `too old resource version: ${rvParam} (${oldest})`));
        return;
      }
      backlog = since;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    // Headers now, as the real server does: a client waits for them before it counts itself watching.
    res.flushHeaders();
    let muted = false;
    const write = (type: string, object: unknown) => muted || res.write(`${JSON.stringify({ type, object })}\n`);
    const mute = () => (muted = true);
    const drop = () => res.destroy();
    muters.add(mute);
    droppers.add(drop);
    // `kubectl get -w` watches in Table rows too.
    const table = wantsTable(req.headers.accept);
    const render = (o: KubeObject) => (table ? asTable(r.kind, [o], o.metadata.resourceVersion) : o);
    for (const e of backlog.filter(matches)) write(e.type, render(e.object));
    const unsubscribe = store.subscribe((e) => { if (matches(e)) write(e.type, render(e.object)); });
    const timers: NodeJS.Timeout[] = [];
    if (query.get('allowWatchBookmarks') === 'true') {
      timers.push(setInterval(() => write('BOOKMARK', { kind: r.kind, apiVersion: apiVersionOf(r), metadata: { resourceVersion: String(store.resourceVersion) } }), bookmarkMs));
    }
    const end = () => {
      unsubscribe();
      timers.forEach(clearTimeout);
      closers.delete(end);
      muters.delete(mute);
      droppers.delete(drop);
      res.end();
    };
    const timeout = Number(query.get('timeoutSeconds'));
    if (timeout > 0) timers.push(setTimeout(end, timeout * 1000));
    closers.add(end);
    req.on('close', end);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://simulator');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    if (req.method === 'GET') {
      const doc = discovery(path, req.headers.host ?? '');
      if (doc) return send(res, 200, doc);
    }
    const segments = path.split('/').filter(Boolean).map(decodeURIComponent);
    let target: Target | undefined;
    if (segments[0] === 'api' && segments[1] === 'v1') target = parseTarget('', 'v1', segments.slice(2));
    else if (segments[0] === 'apis' && segments.length >= 4) target = parseTarget(segments[1]!, segments[2]!, segments.slice(3));
    if (!target || (target.subresource && target.subresource !== 'status')) {
      return send(res, 404, status(404, 'NotFound', 'the server could not find the requested resource'));
    }
    const { resource: r, namespace, name } = target;
    const query = url.searchParams;
    switch (req.method) {
      case 'GET': {
        if (name) {
          const found = store.get(r, namespace, name);
          if (!found) throw notFound(r, name);
          if (wantsTable(req.headers.accept)) return send(res, 200, asTable(r.kind, [found], String(store.resourceVersion)));
          return send(res, 200, found);
        }
        if (query.get('watch') === 'true' || query.get('watch') === '1') return watch(req, res, r, namespace, query);
        const labels = parseLabelSelector(query.get('labelSelector'));
        const fields = parseFieldSelector(query.get('fieldSelector'));
        const items = store.list(r, namespace).filter((o) => matchesLabels(labels, o.metadata.labels) && fields(o));
        if (wantsTable(req.headers.accept)) return send(res, 200, asTable(r.kind, items, String(store.resourceVersion)));
        return send(res, 200, { kind: `${r.kind}List`, apiVersion: apiVersionOf(r), metadata: { resourceVersion: String(store.resourceVersion) }, items });
      }
      case 'POST': {
        if (shed.left > 0) {
          shed.left--;
          res.setHeader('retry-after', String(shed.retryAfterSeconds));
          return send(res, 429, status(429, 'TooManyRequests', 'Too many requests, please try again later.', { retryAfterSeconds: shed.retryAfterSeconds }));
        }
        if (name) return send(res, 405, status(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource'));
        if (!r.namespaced && namespace) throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
        if (r.namespaced && !namespace) throw new ApiError(404, 'NotFound', `${r.plural} are created in a namespace`);
        const created = createObject(r, namespace, await readJson(req));
        if (r.kind === 'Job') kubelet.jobCreated(created);
        return send(res, 201, created);
      }
      case 'DELETE': {
        if (!name) return send(res, 405, status(405, 'MethodNotAllowed', 'deleting a collection is not simulated'));
        const options = await readJson(req);
        const propagation = query.get('propagationPolicy') ?? options?.propagationPolicy ?? (options?.orphanDependents === false ? 'Background' : undefined);
        return send(res, 200, deleteObject(r, namespace, name, propagation));
      }
      default:
        return send(res, 405, status(405, 'MethodNotAllowed', `${req.method} is not simulated; only create, get, list, watch and delete`));
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (res.headersSent) return res.end();
      if (error instanceof ApiError) return send(res, error.code, status(error.code, error.reason, error.message, error.details));
      if (error instanceof SelectorError) return send(res, 400, status(400, 'BadRequest', error.message));
      send(res, 500, status(500, 'InternalError', (error as Error).message));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.on('connection', () => connections++);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://${options.host ?? '127.0.0.1'}:${port}`;

  return {
    url,
    port,
    kubeconfig: () => kubeconfigFor(url),
    state: {
      creates,
      deletes,
      objects: (kind, namespace) => store.list(kindByName(kind), namespace),
      resourceVersion: () => store.resourceVersion,
      connections: () => connections,
    },
    muteWatches: () => [...muters].forEach((mute) => mute()),
    dropWatches: () => [...droppers].forEach((drop) => drop()),
    shedCreates: (count, retryAfterSeconds = 1) => (shed = { left: count, retryAfterSeconds }),
    close: async () => {
      kubelet.close();
      for (const t of pending) clearTimeout(t);
      for (const end of [...closers]) end();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
