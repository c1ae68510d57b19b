import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { gzipSync } from 'node:zlib';
import type { AddressInfo } from 'node:net';
import { CoreV1Api, IsomorphicFetchHttpLibrary, KubeConfig, KubernetesObjectApi } from '@kubernetes/client-node';
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

  it('the worker\'s clients answer as the library\'s own: created, 409, read, listed by label, 404, deleted', async () => {
    const own = client();
    const kept = client();
    const close = reuseConnections(kept);
    try {
      const steps = async (kc: KubeConfig, name: string) => {
        const objects = KubernetesObjectApi.makeApiClient(kc);
        const core = kc.makeApiClient(CoreV1Api);
        const namespace = { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: { test: name } } };
        const code = (p: Promise<unknown>) => p.then(() => 200, (e: { code?: number }) => e.code);
        const created = await objects.create(namespace);
        return {
          created: created.metadata?.name,
          again: await code(objects.create(namespace)),
          read: (await objects.read(namespace)).metadata?.labels,
          listed: (await core.listNamespace({ labelSelector: `test=${name}` })).items.map((n) => n.metadata?.name),
          missing: await code(core.readNamespace({ name: `${name}-missing` })),
          deleted: await code(objects.delete(namespace, undefined, undefined, undefined, undefined, 'Foreground')),
          // Gone, or still going (foreground deletion): which one is a race.
          gone: await core.readNamespace({ name }).then((n) => (n.metadata?.deletionTimestamp ? 'deleting' : 'present'), (e: { code?: number }) => (e.code === 404 ? 'deleting' : e.code)),
        };
      };
      // The library's own HTTP library, counted: the worker's clients must not go through it.
      const send = IsomorphicFetchHttpLibrary.prototype.send;
      let fetched = 0;
      IsomorphicFetchHttpLibrary.prototype.send = function (this: IsomorphicFetchHttpLibrary, context) {
        fetched++;
        return send.call(this, context);
      };
      const expected = await steps(own, 'by-fetch');
      const byFetch = fetched;
      const actual = await steps(kept, 'by-request');
      IsomorphicFetchHttpLibrary.prototype.send = send;
      assert.ok(byFetch >= 7, `the library's own clients sent ${byFetch} requests by fetch`);
      assert.equal(fetched, byFetch, 'the worker\'s clients sent none by fetch');
      assert.deepEqual({ ...actual, created: 'x', read: 'x', listed: actual.listed.length }, { ...expected, created: 'x', read: 'x', listed: expected.listed.length });
      assert.deepEqual(actual, { created: 'by-request', again: 409, read: { test: 'by-request', 'kubernetes.io/metadata.name': 'by-request' }, listed: ['by-request'], missing: 404, deleted: 200, gone: 'deleting' });
    } finally {
      await close();
    }
  });

  it('a refusal whose body the client never reads (a large 401 from a proxy) holds no connection, and closing ends', async () => {
    const server = createServer((_req, res) => {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Status', code: 401, message: 'x'.repeat(100_000) }));
    });
    let open = 0;
    server.on('connection', (socket) => {
      open++;
      socket.on('close', () => open--);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const kc = new KubeConfig();
      kc.loadFromString(sim.kubeconfig().replace(sim.url, `http://127.0.0.1:${(server.address() as AddressInfo).port}`));
      const close = reuseConnections(kc);
      const core = kc.makeApiClient(CoreV1Api);
      for (let i = 0; i < 20; i++) await assert.rejects(core.listNamespace(), (e: { code?: number }) => e.code === 401);
      assert.ok(open <= 2, `${open} connections still open after 20 refusals`);
      const closed = await Promise.race([close().then(() => true), new Promise((r) => setTimeout(() => r(false), 5000))]);
      assert.equal(closed, true, 'closing the kept connections ends');
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it('asks for compressed answers, as the library\'s fetch does, and reads a gzipped one', async () => {
    const list = { kind: 'NamespaceList', apiVersion: 'v1', metadata: {}, items: Array.from({ length: 200 }, (_, i) => ({ metadata: { name: `namespace-${i}` } })) };
    const asked: (string | undefined)[] = [];
    const server = createServer((req, res) => {
      asked.push(req.headers['accept-encoding']);
      const gzip = /\bgzip\b/.test(req.headers['accept-encoding'] ?? '');
      res.writeHead(200, { 'content-type': 'application/json', ...(gzip ? { 'content-encoding': 'gzip' } : {}) });
      res.end(gzip ? gzipSync(JSON.stringify(list)) : JSON.stringify(list));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const kc = new KubeConfig();
      kc.loadFromString(sim.kubeconfig().replace(sim.url, `http://127.0.0.1:${(server.address() as AddressInfo).port}`));
      const close = reuseConnections(kc);
      const names = (await kc.makeApiClient(CoreV1Api).listNamespace()).items.map((n) => n.metadata?.name);
      await close();
      assert.match(asked[0] ?? '', /\bgzip\b/);
      assert.equal(names.length, 200);
      assert.equal(names[199], 'namespace-199');
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});
