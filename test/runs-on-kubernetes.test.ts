import pg from 'pg';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { BatchV1Api, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { createEventStore, type PostgresEventStore } from '../adapters/postgres/event-store.js';
import { pollingOnly } from '../adapters/postgres/subscription.js';
import { runReactor } from '../adapters/reactors/runner.js';
import { runScheduler } from '../adapters/reactors/run-scheduler.js';
import { ensureCreated, retryAfterMs, runLauncher } from '../adapters/kubernetes/launcher.js';
import { runObjects } from '../adapters/kubernetes/run-objects.js';
import { runCanceler } from '../adapters/kubernetes/cancel.js';
import { jobOutcomes } from '../adapters/kubernetes/job-outcomes.js';
import { namespaceRemover, reapNamespaces } from '../adapters/kubernetes/reaper.js';
import { startKubeSimulator, type KubeSimulator, type Outcome } from '../adapters/kubernetes/simulator/index.js';
import { endRun, scheduleRun } from '../commands/runs.js';
import { decideRun, runDecider, type RunCommand } from '../domain/runs/run.js';
import { foldStream } from '../ports/event-store.js';
import { agentRuns } from '../projections/read-models/agent-runs.js';
import { runProjection } from '../projections/runner.js';
import { TEMPLATE_DATABASE, useTestDatabase, type TestDatabase } from './support/cluster.js';
import { runRequested, systemMeta } from './support/events.js';
import type { DomainEvent } from '../domain/events.js';
import { quietLog } from './support/projections.js';
import { until } from './support/until.js';
import { JsonObjectApi } from '../adapters/kubernetes/json-object-api.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let db: TestDatabase;
let store: PostgresEventStore;
useTestDatabase((created) => {
  db = created;
  store = createEventStore(db.pools.primary);
});

const openaiKey = `sk-${randomUUID()}`;
const token = `ghp_${randomUUID().replace(/-/g, '')}`;
const now = () => new Date().toISOString();

/** The platform's worker against a simulated cluster: the run projection, the reactors and the outcome watch. */
async function platform(outcome: Outcome, limits: { deadlineSeconds?: number; deadlineMs?: number; leaseMs?: number; slots?: number; resyncMs?: number; namespacesAtOnce?: boolean; terminationMessages?: Record<string, string>; launchConcurrency?: number } = {}) {
  const sim: KubeSimulator = await startKubeSimulator({ outcome, runSeconds: 0.3, bookmarkIntervalMs: 200, terminationMessages: limits.terminationMessages ?? {} });
  const kc = new KubeConfig();
  kc.loadFromString(sim.kubeconfig());
  const kube = JsonObjectApi.fromConfig(kc);
  const controller = new AbortController();
  const common = { pool: db.pools.primary, store, waker: pollingOnly, signal: controller.signal, log: quietLog, backoff: { minMs: 5, maxMs: 50 }, leaseRetryMs: 50 };
  const outcomes = jobOutcomes({ store, now, pool: db.pools.primary, kubeconfig: kc, batch: kc.makeApiClient(BatchV1Api), core: kc.makeApiClient(CoreV1Api), log: quietLog, meta: systemMeta('kubernetes-outcomes'), stuckGraceMs: 500, idleMs: 1000, resyncMs: limits.resyncMs ?? 300, ...(limits.deadlineMs ? { deadlineMs: limits.deadlineMs } : {}), leaseMs: limits.leaseMs ?? 3_600_000 });
  const tasks = [
    runProjection(agentRuns, common),
    runReactor(runScheduler({ store, pool: db.pools.primary, now, leaseMs: limits.leaseMs ?? 3_600_000, slotsPerProject: limits.slots ?? 2 }), common),
    runReactor(runLauncher({
      kube, store, now, openaiKey, repositoryToken: async () => token, ...(limits.launchConcurrency ? { concurrency: limits.launchConcurrency } : {}),
      objects: { image: 'example.test/codex-k8s/agent:1', deadlineSeconds: limits.deadlineSeconds ?? 3600, ttlAfterFinishedSeconds: 86_400, quota: { cpu: '2', memory: '4Gi', pods: 3 }, egressPorts: [443] },
    }), common),
    runReactor(runCanceler(kube), common),
    outcomes.watch(controller.signal),
    // CODEXK8S_RUN_NAMESPACE_TTL=0, as the worker wires it.
    ...(limits.namespacesAtOnce ? [runReactor(namespaceRemover(kc.makeApiClient(CoreV1Api)), common)] : []),
  ];
  return {
    sim,
    async stop() {
      controller.abort();
      // The cluster goes first, so a task waiting on a call to it gets an error instead of an
      // answer that may never come; a task that still does not end on abort is a defect, named
      // here instead of hanging the run.
      await sim.close();
      const names = ['agent_runs', 'run-scheduler', 'kubernetes-launcher', 'kubernetes-canceler', 'job watch', 'kubernetes-namespace-remover'];
      const ended = new Set<number>();
      tasks.forEach((task, i) => void task.finally(() => ended.add(i)).catch(() => {}));
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`still running 30 s after abort: ${names.filter((_n, i) => !ended.has(i)).join(', ')}`)), 30_000);
      });
      try {
        await Promise.race([Promise.all(tasks), late]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

async function request(projectId = randomUUID()): Promise<string> {
  const runId = randomUUID();
  await store.append([{ stream: `run-${runId}`, expected: 'no_stream', events: [runRequested(runId, projectId)] }], systemMeta());
  return runId;
}

const history = async (runId: string) => (await store.readStream(`run-${runId}`)).map((e) => e.type);

/** For the launcher's own tests: a simulator (whose Jobs hang unless told), the real client on it, the objects' settings, and runs scheduled on slot 1. */
async function launching(simulated: { outcome: Outcome; runSeconds?: number } = { outcome: 'hang' }) {
  const sim = await startKubeSimulator(simulated);
  const kc = new KubeConfig();
  kc.loadFromString(sim.kubeconfig());
  const kube = JsonObjectApi.fromConfig(kc);
  const objects = { image: 'example.test/agent:1', deadlineSeconds: 3600, ttlAfterFinishedSeconds: 60, quota: { cpu: '1', memory: '1Gi', pods: 3 }, egressPorts: [443] };
  /** A run requested and scheduled, and its RunScheduled event. */
  const scheduled = async () => {
    const runId = await request();
    await scheduleRun({ store, now, leaseMs: 60_000 }, runId, 1, systemMeta());
    return { runId, event: (await store.readStream(`run-${runId}`)).at(-1)! };
  };
  return { sim, kc, kube, objects, scheduled };
}

describe('runs on Kubernetes (the simulator, the real client over HTTP)', () => {
  let succeeding: Awaited<ReturnType<typeof platform>>;
  before(async () => (succeeding = await platform('succeed')));
  after(() => succeeding.stop());

  it('requested → scheduled → namespace, objects and one Job → succeeded, and the slot is free again', async () => {
    const projectId = randomUUID();
    const runId = await request(projectId);
    await until(async () => (await history(runId)).includes('RunSucceeded'), 'the run to succeed');
    assert.deepEqual(await history(runId), ['RunRequested', 'RunScheduled', 'RunNamespacePrepared', 'JobStarted', 'RunSucceeded']);
    const namespace = `codex-run-${runId}`;
    const kinds = ['ServiceAccount', 'Role', 'RoleBinding', 'ResourceQuota', 'LimitRange', 'NetworkPolicy', 'Secret', 'Job'];
    for (const kind of kinds) assert.ok(succeeding.sim.state.objects(kind, namespace).length >= 1, `${kind} in ${namespace}`);
    assert.equal(succeeding.sim.state.objects('Job', namespace).length, 1);
    const slot = (await store.readStream(`slot-${projectId}-1`)).map((e) => e.type).filter((t) => t !== 'SlotLeaseRenewed');
    assert.deepEqual(slot, ['SlotLeased', 'SlotReleased'], 'leased, renewed while alive, released');
    // No secret in the log.
    const { rows } = await db.pools.primary.query('SELECT count(*)::int AS n FROM flow_events WHERE payload::text LIKE $1 OR payload::text LIKE $2', [`%${openaiKey}%`, `%${token}%`]);
    assert.equal(rows[0].n, 0);
  });

  it('a revise: the Job\'s containers are told the run revises a pull request (its branch is the pull request\'s)', async () => {
    const runId = randomUUID();
    const event = runRequested(runId) as DomainEvent & { data: { subject: { kind: string; number: number } } };
    event.data.subject = { kind: 'pull_request', number: 9 };
    await store.append([{ stream: `run-${runId}`, expected: 'no_stream', events: [event] }], systemMeta());
    await until(async () => (await history(runId)).includes('JobStarted'), 'the Job');
    const [job] = succeeding.sim.state.objects('Job', `codex-run-${runId}`) as { spec: { template: { spec: { initContainers: { env: { name: string; value: string }[] }[]; containers: { env: { name: string; value: string }[] }[] } } } }[];
    const pod = job!.spec.template.spec;
    for (const container of [...pod.initContainers, ...pod.containers]) {
      assert.deepEqual(container.env.filter((e) => e.name === 'CODEXK8S_SUBJECT_KIND' || e.name === 'CODEXK8S_ISSUE_NUMBER').map((e) => e.value), ['9', 'pull_request']);
    }
  });

  it('the cleanup deletes a finished run\'s namespace past its TTL and a namespace no run knows, and keeps the rest', async () => {
    const kc = new KubeConfig();
    kc.loadFromString(succeeding.sim.kubeconfig());
    const core = kc.makeApiClient(CoreV1Api);
    const finished = await request();
    await until(async () => (await history(finished)).includes('RunSucceeded'), 'the run to succeed');
    const orphan = randomUUID();
    await core.createNamespace({ body: { metadata: { name: `codex-run-${orphan}`, labels: { 'app.kubernetes.io/managed-by': 'codex-k8s', 'codex-k8s.io/run': orphan } } } });
    await core.createNamespace({ body: { metadata: { name: 'someone-elses' } } });
    const namespaces = async () => (await core.listNamespace()).items.map((n) => n.metadata!.name!);
    // A day's TTL: nothing goes yet (the orphan is younger than its grace too).
    assert.deepEqual(await reapNamespaces({ core, store, now: Date.now, ttlMs: 86_400_000, orphanGraceMs: 3_600_000 }).then((c) => c.deleted + c.orphans), 0);
    const counts = await reapNamespaces({ core, store, now: Date.now, ttlMs: 0, orphanGraceMs: 0 });
    assert.ok(counts.deleted >= 1 && counts.orphans === 1, JSON.stringify(counts));
    await until(async () => !(await namespaces()).includes(`codex-run-${finished}`) && !(await namespaces()).includes(`codex-run-${orphan}`), 'the namespaces to go');
    assert.ok((await namespaces()).includes('someone-elses'), 'an unmanaged namespace is never touched');
  });

  it('installations sharing a cluster: the cleanup deletes only its own orphans, and a run known here is judged by its stream whatever its labels (found by two reviews)', async () => {
    const kc = new KubeConfig();
    kc.loadFromString(succeeding.sim.kubeconfig());
    const core = kc.makeApiClient(CoreV1Api);
    const [ours, theirs, unlabelled] = [randomUUID(), randomUUID(), randomUUID()];
    const installation = randomUUID();
    const managed = (runId: string, made?: string) => ({ 'app.kubernetes.io/managed-by': 'codex-k8s', 'codex-k8s.io/run': runId, ...(made ? { 'codex-k8s.io/installation': made } : {}) });
    // A run this database knows, ended, whose namespace carries another identity (a database restored from the log).
    const known = await request();
    await endRun({ store, now }, known, { type: 'CancelRun', reason: 'test', by: null }, systemMeta());
    await core.createNamespace({ body: { metadata: { name: `codex-run-${known}`, labels: managed(known, randomUUID()) } } });
    await core.createNamespace({ body: { metadata: { name: `codex-run-${ours}`, labels: managed(ours, installation) } } });
    await core.createNamespace({ body: { metadata: { name: `codex-run-${theirs}`, labels: managed(theirs, randomUUID()) } } });
    await core.createNamespace({ body: { metadata: { name: `codex-run-${unlabelled}`, labels: managed(unlabelled) } } });
    const counts = await reapNamespaces({ core, store, now: Date.now, ttlMs: 0, orphanGraceMs: 0, installation });
    const names = (await core.listNamespace()).items.map((n) => n.metadata!.name!);
    assert.ok(names.includes(`codex-run-${theirs}`) && names.includes(`codex-run-${unlabelled}`), 'another installation\'s namespaces stay');
    assert.ok(counts.orphans === 1 && counts.deleted >= 1, JSON.stringify(counts));
    await until(async () => !(await core.listNamespace()).items.some((n) => [`codex-run-${ours}`, `codex-run-${known}`].includes(n.metadata!.name!)), 'our orphan and the known run\'s namespace to go');
  });

  it('the installation\'s identity is stable, bound to its database (a copy made from it is another), and the platform cannot change it', async () => {
    const { installationId } = await import('../adapters/postgres/installation.js');
    const identity = await installationId(db.pools.primary);
    assert.equal(await installationId(db.pools.primary), identity);
    // This test database is a CREATE DATABASE … TEMPLATE copy of the tests' template, row and all.
    const template = new pg.Client({ connectionString: db.env.CODEXK8S_DATABASE_URL!.replace(/\/[^/]+$/, `/${TEMPLATE_DATABASE}`) });
    await template.connect();
    try {
      assert.equal((await template.query('SELECT id FROM installation')).rows[0].id, (await db.pools.primary.query('SELECT id FROM installation')).rows[0].id, 'the same row');
      assert.notEqual(await installationId(template), identity, 'another identity');
    } finally {
      await template.end();
    }
    await assert.rejects(db.pools.primary.query('UPDATE installation SET id = gen_random_uuid()'), /permission denied/);
  });

  it('the outcome watch records a run known here whatever its Job\'s labels, and a Job whose run is unknown here quietly, once (found by two reviews)', async () => {
    const { sim, kc, kube, objects, scheduled } = await launching();
    try {
      const { runId, event } = await scheduled();
      await runLauncher({ kube, store, now, openaiKey, repositoryToken: async () => null, objects }).react(event, { meta: systemMeta(), signal: new AbortController().signal });
      assert.equal((await history(runId)).at(-1), 'JobStarted');
      const outcomes = jobOutcomes({ store, now, pool: db.pools.primary, kubeconfig: kc, batch: kc.makeApiClient(BatchV1Api), core: kc.makeApiClient(CoreV1Api), log: quietLog, meta: systemMeta('kubernetes-outcomes'), stuckGraceMs: 0 });
      const complete = (id: string) => ({ metadata: { name: 'agent', namespace: `codex-run-${id}`, labels: { 'app.kubernetes.io/managed-by': 'codex-k8s', 'codex-k8s.io/run': id, 'codex-k8s.io/installation': randomUUID() } }, status: { conditions: [{ type: 'Complete', status: 'True' }] } }) as never;
      await outcomes.record(complete(runId));
      assert.equal((await history(runId)).at(-1), 'RunSucceeded');
      const unknown = randomUUID();
      await outcomes.record(complete(unknown));
      await outcomes.record(complete(unknown));
      assert.deepEqual(await history(unknown), []);
    } finally {
      await sim.close();
    }
  });

  it('the time of the last watch event moves with events only, not when a watch (re)starts (found by a review)', async () => {
    const quiet = await startKubeSimulator({ outcome: 'hang', bookmarkIntervalMs: 60_000 });
    const kc = new KubeConfig();
    kc.loadFromString(quiet.kubeconfig());
    const seen: number[] = [];
    const controller = new AbortController();
    const outcomes = jobOutcomes({ store, now, pool: db.pools.primary, kubeconfig: kc, batch: kc.makeApiClient(BatchV1Api), core: kc.makeApiClient(CoreV1Api), log: quietLog, meta: systemMeta('kubernetes-outcomes'), stuckGraceMs: 60_000, idleMs: 60_000, resyncMs: 600_000, onWatchEvent: (at) => seen.push(at) });
    const watching = outcomes.watch(controller.signal);
    try {
      await new Promise((r) => setTimeout(r, 500));
      assert.deepEqual(seen, [], 'no event yet');
      const core = kc.makeApiClient(CoreV1Api);
      await core.createNamespace({ body: { metadata: { name: 'watched' } } });
      await kc.makeApiClient(BatchV1Api).createNamespacedJob({ namespace: 'watched', body: { metadata: { name: 'j', labels: { 'app.kubernetes.io/managed-by': 'codex-k8s', 'codex-k8s.io/run': randomUUID() } }, spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'a', image: 'example.test/a:1' }] } } } } });
      await until(async () => seen.length > 0, 'the Job\'s event');
    } finally {
      controller.abort();
      await quiet.close();
      await watching;
    }
  });

  it('three runs of a project with two slots: the third starts when a slot frees up; every run ends once', async () => {
    const projectId = randomUUID();
    const runs = [await request(projectId), await request(projectId), await request(projectId)];
    for (const runId of runs) await until(async () => (await history(runId)).includes('RunSucceeded'), `run ${runId} to succeed`);
    for (const runId of runs) assert.equal((await history(runId)).filter((t) => t === 'RunSucceeded').length, 1);
  });
});

describe('what the launcher sends', () => {
  /** Every field of `sent` is in `stored`, with the same value (the server adds its own: uid, status). */
  function contains(stored: unknown, sent: unknown, path: string): void {
    if (sent !== null && typeof sent === 'object') {
      assert.equal(typeof stored, 'object', `${path} is missing`);
      for (const [key, value] of Object.entries(sent)) contains((stored as Record<string, unknown>)[key], value, `${path}.${key}`);
    } else {
      assert.deepEqual(stored, sent, path);
    }
  }

  it('arrives whole: each object the API server stores holds every field runObjects made (found by a review: the LimitRange lost its default limits)', async () => {
    const { sim, kube, objects } = await launching();
    try {
      const made = runObjects(
        { ...objects, runId: randomUUID(), projectId: randomUUID(), agent: 'dev', issue: 7, runner: { repository: 'octo/hello', subjectKind: 'issue', learningMode: true, githubApiUrl: 'https://api.github.com' } },
        { openaiKey: 'sk-test', repositoryToken: 'token-test', imagePullSecret: JSON.stringify({ auths: { 'registry.example': { auth: 'Ym90OnB3' } } }) },
      );
      const all = [made.namespace, ...made.objects];
      for (const object of all) await ensureCreated(kube, object, new AbortController().signal);
      // As the models write themselves (JSON), which is what the API server must get.
      for (const object of all.map((o) => JSON.parse(JSON.stringify(o)) as { kind: string; metadata: { name: string; namespace?: string } })) {
        const stored = sim.state.objects(object.kind, object.metadata.namespace).find((o) => o.metadata?.name === object.metadata.name);
        contains(stored, object, `${object.kind}/${object.metadata.name}`);
      }
    } finally {
      await sim.close();
    }
  });
});

describe('runs that fail or are canceled', () => {
  it('a Job that fails fails its run with the reason', async () => {
    const failing = await platform('fail');
    try {
      const runId = await request();
      await until(async () => (await history(runId)).includes('RunFailed'), 'the run to fail');
      const failed = (await store.readStream(`run-${runId}`)).find((e) => e.type === 'RunFailed')!;
      assert.match((failed.data as { reason: string }).reason, /job failed/);
    } finally {
      await failing.stop();
    }
  });

  it('a step that fails with a reason of its own (an issue edited after its label) fails the run with that reason, not the Job\'s', async () => {
    const edited = 'the issue was edited after it was labelled; label it again to run on the new text';
    const failing = await platform('fail', { terminationMessages: { checkout: JSON.stringify({ error: edited }), publish: 'not the runner\'s JSON' } });
    try {
      const runId = await request();
      await until(async () => (await history(runId)).includes('RunFailed'), 'the run to fail');
      const failed = (await store.readStream(`run-${runId}`)).find((e) => e.type === 'RunFailed')!;
      assert.deepEqual(failed.data, { runId, reason: `checkout: ${edited}`, finishedAt: (failed.data as { finishedAt: string }).finishedAt });
    } finally {
      await failing.stop();
    }
  });

  it('a run whose agent failed keeps the checkpoint publish pushed, beside the agent\'s reason', async () => {
    const checkpoint = { branch: 'codex/issue-7', commit: 'c0ffee0', pullRequest: 100, checkpoint: true };
    const failing = await platform('fail', { terminationMessages: { agent: JSON.stringify({ error: 'codex exited with 3' }), publish: JSON.stringify(checkpoint) } });
    try {
      const runId = await request();
      await until(async () => (await history(runId)).includes('RunFailed'), 'the run to fail');
      const failed = (await store.readStream(`run-${runId}`)).find((e) => e.type === 'RunFailed')!;
      assert.deepEqual([(failed.data as { reason: string }).reason, (failed.data as { result?: unknown }).result], ['agent: codex exited with 3', checkpoint]);
    } finally {
      await failing.stop();
    }
  });

  it('the deadline: the Job\'s activeDeadlineSeconds fails the run, and so does the platform\'s own timer when the cluster says nothing', async () => {
    const bounded = await platform('hang', { deadlineSeconds: 1 });
    try {
      const runId = await request();
      await until(async () => (await history(runId)).includes('RunFailed'), 'the run to fail');
      const failed = (await store.readStream(`run-${runId}`)).find((e) => e.type === 'RunFailed')!;
      assert.match((failed.data as { reason: string }).reason, /DeadlineExceeded/);
      // A Job that failed on its own stays, with its pods' logs, until the namespace's TTL.
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(bounded.sim.state.objects('Job', `codex-run-${runId}`).length, 1, 'the failed Job kept');
    } finally {
      await bounded.stop();
    }
    const timed = await platform('hang', { deadlineMs: 300 });
    try {
      const runId = await request();
      await until(async () => (await history(runId)).includes('RunFailed'), 'the run to fail');
      const failed = (await store.readStream(`run-${runId}`)).find((e) => e.type === 'RunFailed')!;
      assert.equal((failed.data as { reason: string }).reason, 'deadline exceeded');
      // The platform failed a run whose Job still runs: the Job goes (found by a review: the agent
      // kept running, with its keys, outside any slot).
      await until(async () => timed.sim.state.objects('Job', `codex-run-${runId}`).length === 0, 'the running Job deleted');
    } finally {
      await timed.stop();
    }
  });

  it('the watch dropped, or gone silent, mid-run: the outcome still lands (the watch starts over and lists again)', async () => {
    const faulty = await platform('succeed', { resyncMs: 600_000 }); // no periodic re-list: only the watch
    try {
      for (const fault of ['dropWatches', 'muteWatches'] as const) {
        const runId = await request();
        await until(async () => (await history(runId)).includes('JobStarted'), 'the run to start');
        faulty.sim[fault]();
        await until(async () => (await history(runId)).includes('RunSucceeded'), `the outcome after ${fault}`);
      }
    } finally {
      await faulty.stop();
    }
  });

  for (const [outcome, reason] of [['image_pull_error', /ImagePullBackOff|ErrImagePull/], ['crash_loop', /CrashLoopBackOff/]] as const) {
    it(`a pod stuck in ${outcome.replace(/_/g, ' ')} fails its run after the grace period, with the reason`, async () => {
      const stuck = await platform(outcome);
      try {
        const runId = await request();
        await until(async () => (await history(runId)).includes('RunFailed'), 'the run to fail');
        const failed = (await store.readStream(`run-${runId}`)).find((e) => e.type === 'RunFailed')!;
        assert.match((failed.data as { reason: string }).reason, reason);
        await until(async () => stuck.sim.state.objects('Job', `codex-run-${runId}`).length === 0, 'the stuck Job deleted (found by a review: it kept running)');
      } finally {
        await stuck.stop();
      }
    });
  }

  it('a cancel that races the launch leaves no Job: canceled before the reaction, while the objects were being created, or during a retried attempt; an unreachable cluster fails the run with its own reason', async () => {
    const { sim, kube, objects, scheduled } = await launching();
    try {
      const react = (launcher: ReturnType<typeof runLauncher>, event: Awaited<ReturnType<typeof scheduled>>['event']) =>
        launcher.react(event, { meta: systemMeta(), signal: new AbortController().signal });
      const cancel = (runId: string) => endRun({ store, now }, runId, { type: 'CancelRun', reason: 'test', by: null }, systemMeta());

      const before = await scheduled();
      await cancel(before.runId);
      await react(runLauncher({ kube, store, now, openaiKey, repositoryToken: async () => null, objects }), before.event);
      assert.equal(sim.state.objects('Namespace').filter((n) => n.metadata?.name === `codex-run-${before.runId}`).length, 0, 'nothing created for a canceled run');

      const during = await scheduled();
      // The cancel lands while the launcher is creating the run's objects: no Job is ever created.
      const racing = (trigger: string, runId: string) => new Proxy(kube, {
        get: (target, key) => key === 'createAsIs'
          ? async (object: { kind?: string }) => {
            if (object.kind === trigger) await cancel(runId);
            return target.createAsIs(object);
          }
          : Reflect.get(target, key),
      });
      const jobsBefore = sim.state.creates.Job ?? 0;
      await react(runLauncher({ kube: racing('NetworkPolicy', during.runId), store, now, openaiKey, repositoryToken: async () => null, objects }), during.event);
      assert.deepEqual(await history(during.runId), ['RunRequested', 'RunScheduled', 'RunCanceled']);
      assert.equal(sim.state.creates.Job ?? 0, jobsBefore, 'no Job was created');
      // And landing while the Job itself is created: the Job goes (its namespace stays until the TTL).
      const late = await scheduled();
      await react(runLauncher({ kube: racing('Job', late.runId), store, now, openaiKey, repositoryToken: async () => null, objects }), late.event);
      assert.deepEqual(await history(late.runId), ['RunRequested', 'RunScheduled', 'RunNamespacePrepared', 'RunCanceled']);
      await until(async () => sim.state.objects('Job', `codex-run-${late.runId}`).length === 0, 'the Job to go');
      // A retried attempt (the Job's create failed once, after RunNamespacePrepared), canceled while
      // its objects are created again: still no Job (found by a review; its state was remembered).
      const retried = await scheduled();
      let jobTries = 0;
      let policies = 0;
      const flaky = new Proxy(kube, {
        get: (target, key) => key === 'createAsIs'
          ? async (object: { kind?: string }) => {
            if (object.kind === 'Job' && ++jobTries === 1) throw new Error('transient');
            if (object.kind === 'NetworkPolicy' && ++policies === 2) await cancel(retried.runId);
            return target.createAsIs(object);
          }
          : Reflect.get(target, key),
      });
      const jobsBeforeRetry = sim.state.creates.Job ?? 0;
      await react(runLauncher({ kube: flaky, store, now, openaiKey, repositoryToken: async () => null, objects, retryMs: 10 }), retried.event);
      assert.deepEqual(await history(retried.runId), ['RunRequested', 'RunScheduled', 'RunNamespacePrepared', 'RunCanceled']);
      assert.equal(sim.state.creates.Job ?? 0, jobsBeforeRetry, 'no Job was created for the canceled run');
      // A cluster that cannot be reached: the run fails with the socket's own error, not as an HTTP answer.
      const unreachable = await scheduled();
      const refused = { createAsIs: async () => { throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }); } } as unknown as JsonObjectApi;
      await react(runLauncher({ kube: refused, store, now, openaiKey, repositoryToken: async () => null, objects, attempts: 1 }), unreachable.event);
      const failed = (await store.readStream(`run-${unreachable.runId}`)).find((e) => e.type === 'RunFailed');
      assert.equal((failed?.data as { reason?: string } | undefined)?.reason, 'launch failed: connect ECONNREFUSED 127.0.0.1:1');
    } finally {
      await sim.close();
    }
  });

  it('a Job that failed on its own before the launcher recorded its start keeps its namespace and logs (found by a review: the launcher deleted the namespace)', async () => {
    const { sim, kube, objects, scheduled } = await launching({ outcome: 'fail', runSeconds: 0.05 });
    try {
      const { runId, event } = await scheduled();
      const namespace = `codex-run-${runId}`;
      // The Job fails at once, and the outcome watch records it before the launcher's StartJob.
      const failingFast = new Proxy(kube, {
        get: (target, key) => key === 'createAsIs'
          ? async (object: { kind?: string }) => {
            await target.createAsIs(object);
            if (object.kind !== 'Job') return;
            await until(async () => sim.state.objects('Job', namespace)[0]?.status?.conditions?.some((c: { type: string }) => c.type === 'Failed'), 'the Job to fail');
            await endRun({ store, now }, runId, { type: 'FailRun', reason: 'job failed: BackoffLimitExceeded' }, systemMeta());
          }
          : Reflect.get(target, key),
      });
      await runLauncher({ kube: failingFast, store, now, openaiKey, repositoryToken: async () => null, objects }).react(event, { meta: systemMeta(), signal: new AbortController().signal });
      assert.deepEqual(await history(runId), ['RunRequested', 'RunScheduled', 'RunNamespacePrepared', 'RunFailed']);
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(sim.state.objects('Namespace').filter((n) => n.metadata.name === namespace && !n.metadata.deletionTimestamp).length, 1, 'the namespace stays until its TTL');
      assert.equal(sim.state.objects('Job', namespace).length, 1, 'the failed Job stays, with its logs');
    } finally {
      await sim.close();
    }
  });

  it('the namespace remover replayed while the namespace is still Terminating (409) takes it as done (from a review)', async () => {
    const { sim, kc, scheduled } = await launching();
    try {
      const { runId } = await scheduled();
      const core = kc.makeApiClient(CoreV1Api);
      await core.createNamespace({ body: { metadata: { name: `codex-run-${runId}` } } });
      let counted = 0;
      const remover = namespaceRemover(core, () => counted++);
      const ended = { type: 'RunSucceeded', data: { runId, finishedAt: now() } } as never;
      const context = { meta: systemMeta(), signal: new AbortController().signal };
      await remover.react(ended, context);
      await remover.react(ended, context); // a replay after a crash, before the namespace is gone
      await until(async () => sim.state.objects('Namespace').every((n) => n.metadata.name !== `codex-run-${runId}`), 'the namespace gone');
      assert.equal(counted, 1, 'counted once in the cleanup\'s metric, not again for the replay (found by a review: not counted at all)');
    } finally {
      await sim.close();
    }
  });

  it('a Job that ends before the launcher has recorded its start: its outcome is recorded once the start is, not at the next re-list', async () => {
    const { sim, kc, kube, objects, scheduled } = await launching({ outcome: 'succeed', runSeconds: 0.05 });
    const controller = new AbortController();
    try {
      const outcomes = jobOutcomes({ store, now, pool: db.pools.primary, kubeconfig: kc, batch: kc.makeApiClient(BatchV1Api), core: kc.makeApiClient(CoreV1Api), log: quietLog, meta: systemMeta('kubernetes-outcomes'), stuckGraceMs: 500, idleMs: 60_000, resyncMs: 120_000, leaseMs: 3_600_000 });
      const watching = outcomes.watch(controller.signal);
      const { runId, event } = await scheduled();
      // A busy worker: the Job's create answers late, after the Job has already run to its end.
      const late = new Proxy(kube, {
        get: (target, key) => key === 'createAsIs'
          ? async (object: { kind?: string }) => {
            const created = await target.createAsIs(object);
            if (object.kind === 'Job') await sleep(800);
            return created;
          }
          : Reflect.get(target, key),
      });
      await runLauncher({ kube: late, store, now, openaiKey, repositoryToken: async () => null, objects }).react(event, { meta: systemMeta(), signal: new AbortController().signal });
      await until(async () => (await history(runId)).includes('RunSucceeded'), 'the outcome, long before the re-list (2 minutes) or an idle watch starting over (1 minute)', 5_000);
      assert.deepEqual(await history(runId), ['RunRequested', 'RunScheduled', 'RunNamespacePrepared', 'JobStarted', 'RunSucceeded']);
      controller.abort();
      await watching;
    } finally {
      controller.abort();
      await sim.close();
    }
  });

  it('creates an overloaded API server sheds (429) are sent again after its Retry-After, without spending a launch\'s try', async () => {
    const { sim, kube, objects, scheduled } = await launching();
    try {
      const { runId, event } = await scheduled();
      // The namespace's create and two of the objects' after it are shed once each.
      sim.shedCreates(3, 1);
      const started = Date.now();
      // One try only: a shed create that spent it would fail the run.
      await runLauncher({ kube, store, now, openaiKey, repositoryToken: async () => null, objects, attempts: 1 })
        .react(event, { meta: systemMeta(), signal: new AbortController().signal });
      assert.deepEqual(await history(runId), ['RunRequested', 'RunScheduled', 'RunNamespacePrepared', 'JobStarted']);
      assert.ok(Date.now() - started >= 2000, 'it waited the second the server asked for, twice (the namespace, then its objects)');
      assert.equal(sim.state.creates.Namespace, 1);
      assert.equal(sim.state.creates.Job, 1);
      // The client's error carries the server's Retry-After through createAsIs (3 s is not the default).
      sim.shedCreates(1, 3);
      const shed = await kube.createAsIs({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: `shed-${runId}` } }).then(() => undefined, (error: unknown) => error);
      assert.equal(retryAfterMs(shed), 3000);
    } finally {
      await sim.close();
    }
    // The wait asked for, in seconds; a missing or unreadable one is a second, and none is over ten.
    const shedWith = (value?: string) => Object.assign(new Error('Too many requests'), { code: 429, headers: value === undefined ? {} : { 'retry-after': value } });
    assert.deepEqual(['3', undefined, 'soon', '-2', '3600'].map((v) => retryAfterMs(shedWith(v))), [3000, 1000, 1000, 1000, 10_000]);
  });

  it('a Job\'s pods are listed for its outcome, once, and by the re-list for stuck pods; a running Job\'s watch events list none', async () => {
    const sim = await startKubeSimulator({ outcome: 'hang' });
    try {
      const kc = new KubeConfig();
      kc.loadFromString(sim.kubeconfig());
      let listings = 0;
      const core = new Proxy(kc.makeApiClient(CoreV1Api), {
        get: (target, key) => key === 'listNamespacedPod'
          ? (...args: Parameters<CoreV1Api['listNamespacedPod']>) => (listings++, target.listNamespacedPod(...args))
          : Reflect.get(target, key),
      });
      const outcomes = jobOutcomes({ store, now, pool: db.pools.primary, kubeconfig: kc, batch: kc.makeApiClient(BatchV1Api), core, log: quietLog, meta: systemMeta('kubernetes-outcomes'), stuckGraceMs: 60_000 });
      const runId = await request();
      await scheduleRun({ store, now, leaseMs: 60_000 }, runId, 1, systemMeta());
      const stream = `run-${runId}`;
      for (const command of [{ type: 'PrepareNamespace', namespace: `codex-run-${runId}`, objects: [], now: now() }, { type: 'StartJob', namespace: `codex-run-${runId}`, job: 'agent', now: now() }] satisfies RunCommand[]) {
        const run = foldStream(await store.readStream(stream), runDecider);
        await store.append([{ stream, expected: run.version, events: decideRun(command, run.state) }], systemMeta());
      }
      const job = (conditions: { type: string; status: string }[]) => ({ metadata: { name: 'agent', namespace: `codex-run-${runId}`, labels: { 'codex-k8s.io/run': runId } }, status: { conditions } });
      await outcomes.record(job([]), { checkPods: false });
      assert.equal(listings, 0, 'a watch event of a running Job');
      await outcomes.record(job([]));
      assert.equal(listings, 1, 'the re-list looks for stuck pods');
      await outcomes.record(job([{ type: 'Complete', status: 'True' }]), { checkPods: false });
      assert.equal(listings, 2, 'the outcome reads what the pods reported');
      assert.equal((await history(runId)).at(-1), 'RunSucceeded');
      await outcomes.record(job([{ type: 'Complete', status: 'True' }]), { checkPods: false });
      await outcomes.record(job([{ type: 'Complete', status: 'True' }]));
      assert.equal(listings, 2, 'a recorded outcome is not looked at again, by the watch or the re-list');
    } finally {
      await sim.close();
    }
  });

  it('launching one run at a time (CODEXK8S_LAUNCH_CONCURRENCY=1) still starts every run', async () => {
    const serial = await platform('hang', { slots: 3, launchConcurrency: 1 });
    try {
      const projectId = randomUUID();
      const runs = [await request(projectId), await request(projectId), await request(projectId)];
      for (const runId of runs) await until(async () => (await history(runId)).includes('JobStarted'), `run ${runId} to start`);
      assert.equal(serial.sim.state.objects('Job').filter((j) => runs.includes(j.metadata.labels?.['codex-k8s.io/run'] ?? '')).length, 3);
    } finally {
      await serial.stop();
    }
  });

  it('a running run\'s slot lease is renewed while it is alive, so a short lease does not free its slot', async () => {
    const renewing = await platform('hang', { leaseMs: 1000, slots: 1 });
    try {
      const projectId = randomUUID();
      const first = await request(projectId);
      await until(async () => (await history(first)).includes('JobStarted'), 'the first run to start');
      await new Promise((r) => setTimeout(r, 2500)); // two and a half leases
      const second = await request(projectId);
      await new Promise((r) => setTimeout(r, 500));
      assert.deepEqual(await history(second), ['RunRequested'], 'the slot is still the first run\'s');
      assert.ok((await store.readStream(`slot-${projectId}-1`)).some((e) => e.type === 'SlotLeaseRenewed'));
      await endRun({ store, now }, first, { type: 'CancelRun', reason: 'test', by: null }, systemMeta());
      await until(async () => (await history(second)).includes('RunScheduled'), 'the second run to take the slot');
    } finally {
      await renewing.stop();
    }
  });

  it('a cancel while running deletes the Job and frees the slot', async () => {
    const hanging = await platform('hang');
    try {
      const projectId = randomUUID();
      const runId = await request(projectId);
      await until(async () => (await history(runId)).includes('JobStarted'), 'the run to start');
      assert.equal(await endRun({ store, now }, runId, { type: 'CancelRun', reason: 'test', by: null }, systemMeta()), true);
      await until(async () => hanging.sim.state.objects('Job', `codex-run-${runId}`).length === 0, 'the Job to be deleted');
      assert.deepEqual((await store.readStream(`slot-${projectId}-1`)).map((e) => e.type).filter((t) => t !== 'SlotLeaseRenewed'), ['SlotLeased', 'SlotReleased']);
      assert.deepEqual(await history(runId), ['RunRequested', 'RunScheduled', 'RunNamespacePrepared', 'JobStarted', 'RunCanceled']);
    } finally {
      await hanging.stop();
    }
  });
});

describe('run namespaces with no TTL', () => {
  it('with CODEXK8S_RUN_NAMESPACE_TTL=0 a run\'s namespace goes as soon as its outcome is recorded, not at the cleanup\'s next pass', async () => {
    const atOnce = await platform('succeed', { namespacesAtOnce: true });
    try {
      const runId = await request();
      const namespaceOf = () => atOnce.sim.state.objects('Namespace').filter((n) => n.metadata?.name === `codex-run-${runId}`);
      await until(async () => (await history(runId)).includes('JobStarted'), 'the Job');
      assert.equal(namespaceOf().length, 1, 'there while the run runs');
      await until(async () => (await history(runId)).includes('RunSucceeded'), 'the run to succeed');
      await until(async () => namespaceOf().length === 0, 'the namespace to go', 5_000);
    } finally {
      await atOnce.stop();
    }
  });
});
