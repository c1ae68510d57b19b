import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { projectRoot } from '../adapters/paths.js';
import { runCli } from './support/cli.js';
import {
  ApiException, BatchV1Api, CoreV1Api, KubeConfig, NetworkingV1Api, RbacAuthorizationV1Api, Watch, makeInformer,
  type V1Job, type V1Pod,
} from '@kubernetes/client-node';
import { startKubeSimulator, type KubeSimulator, type Outcome } from '../adapters/kubernetes/simulator/index.js';
import { kubectlPath } from './support/kubectl.js';

const clientsFor = (sim: KubeSimulator) => {
  const kc = new KubeConfig();
  kc.loadFromString(sim.kubeconfig());
  return { kc, core: kc.makeApiClient(CoreV1Api), batch: kc.makeApiClient(BatchV1Api), rbac: kc.makeApiClient(RbacAuthorizationV1Api), net: kc.makeApiClient(NetworkingV1Api) };
};

const job = (name: string, extra: { annotations?: Record<string, string>; labels?: Record<string, string>; activeDeadlineSeconds?: number } = {}): V1Job => ({
  metadata: { name, labels: extra.labels, annotations: extra.annotations },
  spec: {
    backoffLimit: 0,
    activeDeadlineSeconds: extra.activeDeadlineSeconds,
    template: { spec: { restartPolicy: 'Never', containers: [{ name: 'agent', image: 'example.test/agent:1' }] } },
  },
});

/** The API error of a call, which must fail. */
async function apiError(call: Promise<unknown>): Promise<{ code: number; reason: string }> {
  try {
    await call;
  } catch (error) {
    assert.ok(error instanceof ApiException, `not an ApiException: ${String(error)}`);
    const body = typeof error.body === 'string' ? JSON.parse(error.body) : error.body;
    return { code: error.code, reason: body.reason };
  }
  assert.fail('the call succeeded');
}

/** True once the read answers 404; undefined while the object is still there. */
const gone = (read: () => Promise<unknown>) => async (): Promise<true | undefined> => {
  try {
    await read();
    return undefined;
  } catch (error) {
    if (error instanceof ApiException && error.code === 404) return true;
    throw error;
  }
};

async function eventually<T>(read: () => Promise<T | undefined> | T | undefined, what: string, ms = 5000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const value = await read();
    if (value !== undefined) return value;
    if (Date.now() > until) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const conditionOf = (j: V1Job, type: string) => j.status?.conditions?.find((c) => c.type === type && c.status === 'True');

describe('Kubernetes API simulator, through the real @kubernetes/client-node', () => {
  let sim: KubeSimulator;
  let c: ReturnType<typeof clientsFor>;
  before(async () => {
    // A deleted namespace stays Terminating long enough for a second delete to find it so on a slow
    // machine (20 ms was passed between two requests on CI once).
    sim = await startKubeSimulator({ runSeconds: 0.05, bookmarkIntervalMs: 50, namespaceTerminatingMs: 1000 });
    c = clientsFor(sim);
  });
  after(() => sim.close());

  it('creates a namespace and each kind in it, with uid, resourceVersion and creationTimestamp', async () => {
    const ns = await c.core.createNamespace({ body: { metadata: { name: 'run-1', labels: { 'app.kubernetes.io/managed-by': 'codex-k8s' } } } });
    assert.equal(ns.status?.phase, 'Active');
    const namespace = 'run-1';
    await c.core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'agent' }, automountServiceAccountToken: false } });
    await c.core.createNamespacedSecret({ namespace, body: { metadata: { name: 'openai' }, stringData: { key: 'not-a-real-key' } } });
    await c.core.createNamespacedResourceQuota({ namespace, body: { metadata: { name: 'quota' }, spec: { hard: { pods: '2', 'limits.cpu': '2' } } } });
    await c.core.createNamespacedLimitRange({ namespace, body: { metadata: { name: 'limits' }, spec: { limits: [{ type: 'Container', _default: { cpu: '500m' } }] } } });
    await c.rbac.createNamespacedRole({ namespace, body: { metadata: { name: 'agent' }, rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['get'] }] } });
    await c.rbac.createNamespacedRoleBinding({ namespace, body: { metadata: { name: 'agent' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'agent' }, subjects: [{ kind: 'ServiceAccount', name: 'agent', namespace }] } });
    await c.net.createNamespacedNetworkPolicy({ namespace, body: { metadata: { name: 'deny' }, spec: { podSelector: {}, policyTypes: ['Ingress', 'Egress'], egress: [{ ports: [{ protocol: 'TCP', port: 443 }] }] } } });
    const created = await c.batch.createNamespacedJob({ namespace, body: job('agent') });
    assert.match(created.metadata?.uid ?? '', /^[0-9a-f-]{36}$/);
    assert.match(created.metadata?.resourceVersion ?? '', /^\d+$/);
    assert.ok(created.metadata?.creationTimestamp instanceof Date);
    assert.ok(Number(created.metadata?.resourceVersion) > Number(ns.metadata?.resourceVersion));
    for (const kind of ['Namespace', 'ServiceAccount', 'Secret', 'ResourceQuota', 'LimitRange', 'Role', 'RoleBinding', 'NetworkPolicy', 'Job']) {
      assert.equal(sim.state.creates[kind], 1, kind);
    }
    const read = await c.rbac.readNamespacedRoleBinding({ name: 'agent', namespace });
    assert.equal(read.roleRef.name, 'agent');
  });

  it('answers 409 AlreadyExists to a second create, 404 NotFound for a missing object or namespace', async () => {
    await c.core.createNamespace({ body: { metadata: { name: 'dup' } } });
    assert.deepEqual(await apiError(c.core.createNamespace({ body: { metadata: { name: 'dup' } } })), { code: 409, reason: 'AlreadyExists' });
    assert.deepEqual(await apiError(c.batch.readNamespacedJob({ name: 'nope', namespace: 'dup' })), { code: 404, reason: 'NotFound' });
    assert.deepEqual(await apiError(c.core.createNamespacedSecret({ namespace: 'missing', body: { metadata: { name: 's' } } })), { code: 404, reason: 'NotFound' });
  });

  it('answers 422 Invalid to what the real API server refuses: no image, a wrong type, a bad name', async () => {
    await c.core.createNamespace({ body: { metadata: { name: 'invalid' } } });
    const noImage = job('no-image');
    delete noImage.spec!.template.spec!.containers[0]!.image;
    assert.deepEqual(await apiError(c.batch.createNamespacedJob({ namespace: 'invalid', body: noImage })), { code: 422, reason: 'Invalid' });
    assert.deepEqual(await apiError(c.batch.createNamespacedJob({ namespace: 'invalid', body: job('Not_A_Name') })), { code: 422, reason: 'Invalid' });
    // Past the typed client, straight over HTTP: a string where the schema wants an integer.
    const wrongType = { ...job('wrong-type'), spec: { ...job('wrong-type').spec, backoffLimit: 'zero' } };
    const response = await fetch(`${sim.url}/apis/batch/v1/namespaces/invalid/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(wrongType) });
    assert.equal(response.status, 422);
    const status = await response.json() as { kind: string; reason: string; message: string };
    assert.equal(status.kind, 'Status');
    assert.match(status.message, /backoffLimit must be integer/);
    assert.equal(sim.state.objects('Job', 'invalid').length, 0);
  });

  it('lists by label selector, in a namespace and across all of them', async () => {
    for (const [ns, name, labels] of [['sel-a', 'one', { app: 'x', tier: 'a' }], ['sel-a', 'two', { app: 'y' }], ['sel-b', 'three', { app: 'x', tier: 'b' }]] as const) {
      await c.core.createNamespace({ body: { metadata: { name: ns } } }).catch(() => undefined);
      await c.core.createNamespacedSecret({ namespace: ns, body: { metadata: { name, labels } } });
    }
    const names = (list: { items: { metadata?: { name?: string } }[] }) => list.items.map((i) => i.metadata?.name).sort();
    assert.deepEqual(names(await c.core.listSecretForAllNamespaces({ labelSelector: 'app=x' })), ['one', 'three']);
    assert.deepEqual(names(await c.core.listNamespacedSecret({ namespace: 'sel-a', labelSelector: 'app=x' })), ['one']);
    assert.deepEqual(names(await c.core.listSecretForAllNamespaces({ labelSelector: 'app in (x,y),tier!=b' })), ['one', 'two']);
    assert.deepEqual(names(await c.core.listSecretForAllNamespaces({ labelSelector: 'tier' })), ['one', 'three']);
    assert.deepEqual(names(await c.core.listSecretForAllNamespaces({ labelSelector: 'app,!tier' })), ['two']);
  });

  it('a watch sees a succeeding Job ADDED, then MODIFIED to Complete; its pod is labelled and Succeeded', async () => {
    await c.core.createNamespace({ body: { metadata: { name: 'watched' } } });
    const list = await c.batch.listJobForAllNamespaces({});
    const seen: { type: string; obj: V1Job }[] = [];
    const done = new Promise<void>((resolve) => {
      void new Watch(c.kc).watch('/apis/batch/v1/jobs', { resourceVersion: list.metadata?.resourceVersion, allowWatchBookmarks: true }, (type, obj: V1Job) => {
        seen.push({ type, obj });
        const complete = seen.some((e) => e.type === 'MODIFIED' && e.obj.status?.conditions?.some((cd) => cd.type === 'Complete'));
        if (complete && seen.some((e) => e.type === 'BOOKMARK')) resolve();
      }, () => undefined).then((controller) => done.finally(() => controller.abort()));
    });
    await c.batch.createNamespacedJob({ namespace: 'watched', body: job('runs') });
    await done;
    const jobEvents = seen.filter((e) => e.type !== 'BOOKMARK');
    assert.equal(jobEvents[0]?.type, 'ADDED');
    assert.equal(jobEvents.find((e) => conditionOf(e.obj, 'Complete'))?.obj.status?.succeeded, 1);
    const bookmark = seen.find((e) => e.type === 'BOOKMARK')!;
    assert.match(bookmark.obj.metadata?.resourceVersion ?? '', /^\d+$/);
    const [pod] = (await c.core.listNamespacedPod({ namespace: 'watched', labelSelector: 'batch.kubernetes.io/job-name=runs' })).items;
    assert.equal(pod?.status?.phase, 'Succeeded');
    assert.equal(pod?.metadata?.labels?.['job-name'], 'runs');
    assert.equal(pod?.metadata?.labels?.['controller-uid'], jobEvents[0]?.obj.metadata?.uid);
    assert.deepEqual(jobEvents[0]?.obj.spec?.selector?.matchLabels, { 'batch.kubernetes.io/controller-uid': jobEvents[0]?.obj.metadata?.uid });
  });

  it('an informer (list + watch) on labelled Jobs across namespaces sees only those, and their updates', async () => {
    await c.core.createNamespace({ body: { metadata: { name: 'informed' } } });
    const informer = makeInformer(c.kc, '/apis/batch/v1/jobs', () => c.batch.listJobForAllNamespaces({ labelSelector: 'codex=yes' }), 'codex=yes');
    const complete = new Promise<V1Job>((resolve) => informer.on('update', (j) => { if (conditionOf(j, 'Complete')) resolve(j); }));
    await informer.start();
    await c.batch.createNamespacedJob({ namespace: 'informed', body: job('ignored') });
    await c.batch.createNamespacedJob({ namespace: 'informed', body: job('informed', { labels: { codex: 'yes' } }) });
    assert.equal((await complete).metadata?.name, 'informed');
    assert.deepEqual(informer.list().map((j) => j.metadata?.name), ['informed']);
    await informer.stop();
  });

  it('answers 410 Gone to a watch from a resourceVersion older than the kept history', async () => {
    const small = await startKubeSimulator({ historyLimit: 3 });
    try {
      const s = clientsFor(small);
      for (const name of ['a', 'b', 'c', 'd', 'e']) await s.core.createNamespace({ body: { metadata: { name } } });
      const error = await new Promise<unknown>((resolve) => {
        void new Watch(s.kc).watch('/api/v1/namespaces', { resourceVersion: '1' }, () => undefined, resolve);
      });
      assert.equal((error as { statusCode?: number }).statusCode, 410);
      // From a recent version the watch resumes and replays what followed it.
      const replayed: string[] = [];
      await new Promise<void>((resolve) => {
        void new Watch(s.kc).watch('/api/v1/namespaces', { resourceVersion: String(small.state.resourceVersion() - 1) }, (type, obj: { metadata: { name: string } }) => {
          replayed.push(`${type} ${obj.metadata.name}`);
          resolve();
        }, () => undefined).then((controller) => setTimeout(() => controller.abort(), 50));
      });
      assert.deepEqual(replayed, ['ADDED e']);
    } finally {
      await small.close();
    }
  });

  it('a watch resumed after a Job finished replays each of its versions as it was then', async () => {
    await c.core.createNamespace({ body: { metadata: { name: 'history' } } });
    const from = (await c.batch.listJobForAllNamespaces({})).metadata!.resourceVersion!;
    await c.batch.createNamespacedJob({ namespace: 'history', body: job('versions') });
    await eventually(async () => conditionOf(await c.batch.readNamespacedJob({ namespace: 'history', name: 'versions' }), 'Complete'), 'the Job to complete');
    const replayed: V1Job[] = [];
    await new Promise<void>((resolve) => {
      void new Watch(c.kc).watch('/apis/batch/v1/namespaces/history/jobs', { resourceVersion: from }, (_type, obj: V1Job) => {
        replayed.push(obj);
        if (conditionOf(obj, 'Complete')) resolve();
      }, () => undefined).then((controller) => void setTimeout(() => controller.abort(), 50));
    });
    const versions = replayed.map((j) => Number(j.metadata?.resourceVersion));
    assert.deepEqual(versions, [...versions].sort((a, b) => a - b), 'in resourceVersion order');
    assert.equal(new Set(versions).size, versions.length, 'each version once, with its own resourceVersion');
    assert.deepEqual(replayed[0]!.status, {}, 'the created version, without what came later');
    assert.equal(replayed.filter((j) => conditionOf(j, 'Complete')).length, 1);
    // What the simulator hands its tests is what it stores: read-only.
    const stored = sim.state.objects('Job', 'history')[0]!;
    assert.throws(() => { (stored.metadata as { name: string }).name = 'renamed'; }, TypeError);
  });

  it('deleting a namespace deletes everything in it', async () => {
    await c.core.createNamespace({ body: { metadata: { name: 'doomed' } } });
    await c.core.createNamespacedSecret({ namespace: 'doomed', body: { metadata: { name: 's' } } });
    await c.batch.createNamespacedJob({ namespace: 'doomed', body: job('j', { annotations: { 'codex-k8s.io/simulate-outcome': 'hang' } }) });
    await eventually(() => sim.state.objects('Pod', 'doomed')[0], 'the pod');
    const terminating = await c.core.deleteNamespace({ name: 'doomed' });
    assert.equal((terminating as { status?: { phase?: string } }).status?.phase, 'Terminating');
    // A second delete while it empties: 409 Conflict, as the API server answers.
    assert.deepEqual(await apiError(c.core.deleteNamespace({ name: 'doomed' })), { code: 409, reason: 'Conflict' });
    await eventually(gone(() => c.core.readNamespace({ name: 'doomed' })), 'the namespace gone');
    for (const kind of ['Secret', 'Job', 'Pod']) assert.equal(sim.state.objects(kind, 'doomed').length, 0, kind);
  });

  it('a foreground delete of a Job marks it, removes its pods, then the Job', async () => {
    await c.core.createNamespace({ body: { metadata: { name: 'fg' } } });
    await c.batch.createNamespacedJob({ namespace: 'fg', body: job('long', { annotations: { 'codex-k8s.io/simulate-outcome': 'hang' } }) });
    await eventually(() => sim.state.objects('Pod', 'fg').find((p) => p.status?.phase === 'Running'), 'a running pod');
    const order: string[] = [];
    const watches = await Promise.all(['/api/v1/namespaces/fg/pods', '/apis/batch/v1/namespaces/fg/jobs'].map((path) =>
      new Watch(c.kc).watch(path, { resourceVersion: String(sim.state.resourceVersion()) }, (type, obj: V1Job) => order.push(`${type} ${obj.kind}`), () => undefined)));
    await c.batch.deleteNamespacedJob({ name: 'long', namespace: 'fg', propagationPolicy: 'Foreground' });
    // The client reads the answer as a V1Status; the Job as stored shows the marks.
    const marked = sim.state.objects('Job', 'fg')[0];
    assert.ok(marked?.metadata.deletionTimestamp);
    assert.deepEqual(marked?.metadata.finalizers, ['foregroundDeletion']);
    await eventually(gone(() => c.batch.readNamespacedJob({ name: 'long', namespace: 'fg' })), 'the Job gone');
    assert.equal(sim.state.objects('Pod', 'fg').length, 0);
    await eventually(() => (order.length >= 3 ? true : undefined), 'three watch events');
    watches.forEach((w) => w.abort());
    assert.deepEqual(order, ['MODIFIED Job', 'DELETED Pod', 'DELETED Job']);
  });

  describe('each outcome', () => {
    const runJob = async (outcome: Outcome, extra: Parameters<typeof job>[1] = {}) => {
      const ns = `outcome-${outcome.replace(/_/g, '-')}${extra.activeDeadlineSeconds ? '-deadline' : ''}`;
      await c.core.createNamespace({ body: { metadata: { name: ns } } });
      await c.batch.createNamespacedJob({ namespace: ns, body: job('j', { ...extra, annotations: { 'codex-k8s.io/simulate-outcome': outcome } }) });
      const pod = () => (sim.state.objects('Pod', ns)[0] as V1Pod | undefined);
      const read = () => c.batch.readNamespacedJob({ name: 'j', namespace: ns });
      return { pod, read };
    };

    it('succeed: Complete, succeeded 1, pod Succeeded', async () => {
      const { pod, read } = await runJob('succeed');
      const j = await eventually(async () => { const j = await read(); return conditionOf(j, 'Complete') ? j : undefined; }, 'Complete');
      assert.equal(j.status?.succeeded, 1);
      assert.equal(pod()?.status?.phase, 'Succeeded');
    });

    it('fail: Failed, pod Failed', async () => {
      const { pod, read } = await runJob('fail');
      const j = await eventually(async () => { const j = await read(); return conditionOf(j, 'Failed') ? j : undefined; }, 'Failed');
      assert.equal(j.status?.failed, 1);
      assert.equal(pod()?.status?.phase, 'Failed');
    });

    it('image_pull_error: pod Pending, waiting in ImagePullBackOff, the Job not finished', async () => {
      const { pod, read } = await runJob('image_pull_error');
      await eventually(() => pod()?.status?.containerStatuses?.[0]?.state?.waiting?.reason === 'ImagePullBackOff' || undefined, 'ImagePullBackOff');
      assert.equal(pod()?.status?.phase, 'Pending');
      assert.equal((await read()).status?.conditions, undefined);
    });

    it('crash_loop: pod Running in CrashLoopBackOff with a growing restartCount', async () => {
      const { pod } = await runJob('crash_loop');
      await eventually(() => ((pod()?.status?.containerStatuses?.[0]?.restartCount ?? 0) >= 2 || undefined), 'two restarts');
      assert.equal(pod()?.status?.phase, 'Running');
      assert.equal(pod()?.status?.containerStatuses?.[0]?.state?.waiting?.reason, 'CrashLoopBackOff');
    });

    it('hang: pod Running, the Job still active', async () => {
      const { pod, read } = await runJob('hang');
      await eventually(() => pod()?.status?.phase === 'Running' || undefined, 'Running');
      await new Promise((r) => setTimeout(r, 150));
      assert.equal(pod()?.status?.phase, 'Running');
      assert.equal((await read()).status?.active, 1);
    });

    it('past activeDeadlineSeconds: Failed with reason DeadlineExceeded', async () => {
      const { read } = await runJob('hang', { activeDeadlineSeconds: 1 });
      const j = await eventually(async () => { const j = await read(); return conditionOf(j, 'Failed') ? j : undefined; }, 'Failed');
      assert.equal(conditionOf(j, 'Failed')?.reason, 'DeadlineExceeded');
    });
  });

  it('serves the discovery documents kubectl reads', async () => {
    const get = async (path: string) => (await fetch(`${sim.url}${path}`)).json() as Promise<any>;
    assert.deepEqual((await get('/api')).versions, ['v1']);
    const groups = (await get('/apis')).groups.map((g: { name: string }) => g.name).sort();
    assert.deepEqual(groups, ['batch', 'networking.k8s.io', 'rbac.authorization.k8s.io']);
    const core = await get('/api/v1');
    assert.equal(core.kind, 'APIResourceList');
    const pods = core.resources.find((r: { name: string }) => r.name === 'pods');
    assert.deepEqual({ kind: pods.kind, namespaced: pods.namespaced, singularName: pods.singularName, shortNames: pods.shortNames }, { kind: 'Pod', namespaced: true, singularName: 'pod', shortNames: ['po'] });
    assert.equal((await get('/apis/batch/v1')).resources[0].name, 'jobs');
    assert.match((await get('/version')).gitVersion, /^v1\./);
    const resources = await c.batch.getAPIResources();
    assert.ok(resources.resources.some((r) => r.name === 'jobs' && r.verbs.includes('watch')));
  });

  // Debian trixie's kubectl, as the test setup fetched it (protobuf bodies of `kubectl create
  // namespace` are not simulated, so objects go in as manifests).
  it('the real kubectl creates from a manifest, gets and deletes', async (t) => {
    const kubectl = promisify(execFile);
    const binary = kubectlPath();
    if (!binary) return t.skip('the test setup could not fetch kubectl');
    assert.match((await kubectl(binary, ['version', '--client'])).stdout, /Client Version: v1\.32\./);
    const dir = await mkdtemp(join(tmpdir(), 'kube-sim-'));
    try {
      const env = { ...process.env, KUBECONFIG: join(dir, 'kubeconfig'), HOME: dir };
      await writeFile(env.KUBECONFIG, sim.kubeconfig());
      const run = async (...args: string[]) => (await kubectl(binary, args, { env, timeout: 20_000 })).stdout;
      await writeFile(join(dir, 'ns.json'), JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'by-kubectl' } }));
      await writeFile(join(dir, 'job.json'), JSON.stringify({ apiVersion: 'batch/v1', kind: 'Job', ...job('hello'), metadata: { name: 'hello', namespace: 'by-kubectl' } }));
      assert.match(await run('create', '--validate=false', '-f', join(dir, 'ns.json')), /namespace\/by-kubectl created/);
      assert.match(await run('create', '--validate=false', '-f', join(dir, 'job.json')), /job.batch\/hello created/);
      assert.match(await run('get', 'jobs', '--all-namespaces', '-o', 'name'), /job.batch\/hello/);
      assert.match(await run('get', 'ns'), /by-kubectl/);
      await eventually(async () => ((await run('get', 'job', 'hello', '-n', 'by-kubectl', '-o', 'jsonpath={.status.conditions[0].type}')) === 'Complete' || undefined), 'Complete through kubectl');
      // The server-side Table kubectl prints.
      assert.match(await run('get', 'jobs', '-n', 'by-kubectl'), /^hello\s+Complete\s+1\/1\s+\d+s$/m);
      assert.match(await run('delete', 'job', 'hello', '-n', 'by-kubectl'), /"hello" deleted/);
      assert.equal(sim.state.objects('Pod', 'by-kubectl').length, 0);
      assert.match(await run('delete', 'namespace', 'by-kubectl'), /"by-kubectl" deleted/);
      assert.doesNotMatch(await run('get', 'ns'), /by-kubectl/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('codex-k8s kube simulate', () => {
  it('serves on 127.0.0.1, writes a kubeconfig, prints the export line, stops on SIGTERM', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kube-sim-cli-'));
    try {
      const file = join(dir, 'nested', 'kubeconfig');
      const child = spawn(process.execPath, [join(projectRoot, 'bin', 'codex-k8s.js'), 'kube', 'simulate', '--port', '0', '--kubeconfig', file, '--outcome', 'fail', '--run-seconds', '0.05']);
      let stdout = '';
      child.stdout.on('data', (d) => (stdout += d));
      const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
      await eventually(() => (stdout.includes('\n') ? true : undefined), 'the export line');
      assert.equal(stdout, `export KUBECONFIG=${file}\n`);
      const kc = new KubeConfig();
      kc.loadFromString(await readFile(file, 'utf8'));
      assert.match(kc.getCurrentCluster()?.server ?? '', /^http:\/\/127\.0\.0\.1:\d+$/);
      const batch = kc.makeApiClient(BatchV1Api);
      await batch.createNamespacedJob({ namespace: 'default', body: job('cli') });
      const failed = await eventually(async () => { const j = await batch.readNamespacedJob({ name: 'cli', namespace: 'default' }); return conditionOf(j, 'Failed') ? j : undefined; }, 'Failed');
      assert.equal(failed.status?.failed, 1);
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses bad flags with one line', async () => {
    for (const [flag, value, message] of [['--outcome', 'explode', /--outcome must be one of/], ['--port', '70000', /--port must be/], ['--run-seconds', 'soon', /--run-seconds must be/], ['--kubeconfig', tmpdir(), /--kubeconfig: cannot write/]] as const) {
      const result = await runCli(['kube', 'simulate', flag, value]);
      assert.equal(result.code, 1);
      assert.match(result.stderr, message);
      assert.equal(result.stderr.trim().split('\n').length, 1);
      assert.equal(result.stdout, '');
    }
  });
});
