import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { KubeConfig, KubernetesObjectApi } from '@kubernetes/client-node';
import { createEventStore, type PostgresEventStore } from '../adapters/postgres/event-store.js';
import { runLauncher } from '../adapters/kubernetes/launcher.js';
import { startKubeSimulator } from '../adapters/kubernetes/simulator/index.js';
import { endRun, scheduleRun } from '../commands/runs.js';
import { useTestDatabase } from './support/cluster.js';
import { runRequested, systemMeta } from './support/events.js';

let store: PostgresEventStore;
useTestDatabase((db) => {
  store = createEventStore(db.pools.primary);
});
const now = () => new Date().toISOString();

// Found by a review of the launcher deciding on the state it read (a remembered state).
describe('the launcher against a cancel that races a retried launch', () => {
  it('a cancel that lands before PrepareNamespace of a retried launch attempt creates no Job', async () => {
    const sim = await startKubeSimulator({ outcome: 'hang' });
    try {
      const kc = new KubeConfig();
      kc.loadFromString(sim.kubeconfig());
      const kube = KubernetesObjectApi.makeApiClient(kc);
      const objects = { image: 'example.test/agent:1', deadlineSeconds: 3600, ttlAfterFinishedSeconds: 60, quota: { cpu: '1', memory: '1Gi', pods: 3 }, egressPorts: [443] };
      const runId = randomUUID();
      await store.append([{ stream: `run-${runId}`, expected: 'no_stream', events: [runRequested(runId)] }], systemMeta());
      await scheduleRun({ store, now, leaseMs: 60_000 }, runId, 1, systemMeta());
      const event = (await store.readStream(`run-${runId}`)).at(-1)!;
      let jobTries = 0;
      let policies = 0;
      // Attempt 1: the Job's create fails once (a transient error); attempt 2: the run is canceled
      // while its objects are created again (before the PrepareNamespace step).
      const flaky = new Proxy(kube, {
        get: (target, key) => key === 'create'
          ? async (object: { kind?: string }) => {
            if (object.kind === 'Job' && ++jobTries === 1) throw new Error('transient');
            if (object.kind === 'NetworkPolicy' && ++policies === 2) await endRun({ store, now }, runId, { type: 'CancelRun', reason: 'test', by: null }, systemMeta());
            return target.create(object as never);
          }
          : Reflect.get(target, key),
      });
      const jobsBefore = sim.state.creates.Job ?? 0;
      await runLauncher({ kube: flaky, store, now, openaiKey: 'sk-x', repositoryToken: async () => null, objects, retryMs: 10 })
        .react(event, { meta: systemMeta(), signal: new AbortController().signal });
      assert.deepEqual((await store.readStream(`run-${runId}`)).map((e) => e.type), ['RunRequested', 'RunScheduled', 'RunNamespacePrepared', 'RunCanceled']);
      assert.equal(sim.state.creates.Job ?? 0, jobsBefore, 'no Job was created for the canceled run');
    } finally {
      await sim.close();
    }
  });

  it('a launch that cannot reach the cluster fails the run with the socket\'s own error, not as an HTTP answer', async () => {
    const runId = randomUUID();
    await store.append([{ stream: `run-${runId}`, expected: 'no_stream', events: [runRequested(runId)] }], systemMeta());
    await scheduleRun({ store, now, leaseMs: 60_000 }, runId, 1, systemMeta());
    const event = (await store.readStream(`run-${runId}`)).at(-1)!;
    const refused = { create: async () => { throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }); } } as unknown as KubernetesObjectApi;
    const objects = { image: 'example.test/agent:1', deadlineSeconds: 3600, ttlAfterFinishedSeconds: 60, quota: { cpu: '1', memory: '1Gi', pods: 3 }, egressPorts: [443] };
    await runLauncher({ kube: refused, store, now, openaiKey: 'sk-x', repositoryToken: async () => null, objects, attempts: 1 })
      .react(event, { meta: systemMeta(), signal: new AbortController().signal });
    const failed = (await store.readStream(`run-${runId}`)).find((e) => e.type === 'RunFailed');
    assert.equal((failed?.data as { reason?: string } | undefined)?.reason, 'launch failed: connect ECONNREFUSED 127.0.0.1:1');
  });
});
