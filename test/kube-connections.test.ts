import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CoreV1Api, KubeConfig, KubernetesObjectApi } from '@kubernetes/client-node';
import { reuseConnections } from '../adapters/kubernetes/connections.js';
import { startKubeSimulator, type KubeSimulator } from '../adapters/kubernetes/simulator/index.js';

// The real client over HTTP against the simulator, counting the TCP connections it accepts.
describe('the Kubernetes client\'s connections', () => {
  let sim: KubeSimulator;
  before(async () => (sim = await startKubeSimulator({ outcome: 'succeed' })));
  after(() => sim.close());

  const client = () => {
    const kc = new KubeConfig();
    kc.loadFromString(sim.kubeconfig());
    return kc;
  };
  const twentyRequests = async (kc: KubeConfig) => {
    const core = kc.makeApiClient(CoreV1Api);
    const objects = KubernetesObjectApi.makeApiClient(kc);
    for (let i = 0; i < 10; i++) {
      await core.listNamespace();
      await objects.read({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } }).catch(() => {});
    }
  };

  it('as the library makes them: a new connection for every request (why the worker keeps its own)', async () => {
    const before = sim.state.connections();
    await twentyRequests(client());
    assert.ok(sim.state.connections() - before >= 20, `${sim.state.connections() - before} connections for 20 requests`);
  });

  it('kept by the worker: 20 requests, one after another, on one or two connections; closing lets them go', async () => {
    const kc = client();
    const close = reuseConnections(kc);
    const before = sim.state.connections();
    await twentyRequests(kc);
    const used = sim.state.connections() - before;
    assert.ok(used >= 1 && used <= 2, `${used} connections for 20 requests`);
    await close();
    // After closing, a new request opens a new connection (the old ones are gone, not leaked).
    await kc.makeApiClient(CoreV1Api).listNamespace();
    assert.equal(sim.state.connections() - before, used + 1);
  });

  it('a client of another cluster (or other TLS settings) gets a connection of its own', async () => {
    const other = await startKubeSimulator({ outcome: 'succeed' });
    try {
      const kc = client();
      const close = reuseConnections(kc);
      const mine = sim.state.connections();
      await kc.makeApiClient(CoreV1Api).listNamespace();
      const second = new KubeConfig();
      second.loadFromString(other.kubeconfig());
      const closeOther = reuseConnections(second);
      await second.makeApiClient(CoreV1Api).listNamespace();
      await kc.makeApiClient(CoreV1Api).listNamespace();
      assert.equal(sim.state.connections() - mine, 1);
      assert.equal(other.state.connections(), 1);
      await Promise.all([close(), closeOther()]);
    } finally {
      await other.close();
    }
  });
});
