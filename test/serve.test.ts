import { describe, it } from 'node:test';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { projectRoot } from '../adapters/paths.js';
import { createEventStore } from '../adapters/postgres/event-store.js';
import { allProjections } from '../projections/index.js';
import { useTestDatabase, type TestDatabase } from './support/cluster.js';
import { appendRuns, caughtUp } from './support/projections.js';
import { runRequested as runRequestedEvent } from './support/events.js';
import examples from '@octokit/webhooks-examples' with { type: 'json' };
import { connectHelloWorld } from './support/hello-world.js';
import { staffSecrets } from './support/secrets.js';
import { until } from './support/until.js';

let db: TestDatabase;
useTestDatabase((created) => (db = created));

const secret = randomBytes(20).toString('hex');
const SHUTDOWN_SECONDS = 3;

const freePort = () =>
  new Promise<number>((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });

async function serve(poolSize: number, role = 'all', env: Record<string, string> = {}): Promise<{ child: ChildProcess; port: number; exited: Promise<number | null>; stderr: () => string }> {
  const port = await freePort();
  const child = spawn(process.execPath, [join(projectRoot, 'bin', 'codex-k8s.js'), 'serve', '--role', role], {
    env: {
      ...process.env, ...db.env, CODEXK8S_DATABASE_POOL_SIZE: String(poolSize), CODEXK8S_HTTP_PORT: String(port),
      CODEXK8S_GITHUB_WEBHOOK_SECRET: secret, CODEXK8S_SHUTDOWN_TIMEOUT: String(SHUTDOWN_SECONDS), CODEXK8S_LOG_LEVEL: 'warn', ...staffSecrets, ...env,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, port, exited, stderr: () => stderr };
}

async function ready(port: number, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/readyz`)).ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error('serve did not become ready');
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Every projection's lease is held by this process (checkpoint holders are host:pid). */
async function leasesHeldBy(pid: number, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { rows } = await db.pools.primary.query<{ name: string }>(
      'SELECT name FROM projection_checkpoints WHERE holder = $1 UNION ALL SELECT name FROM reactor_checkpoints WHERE holder = $1', [`${hostname()}:${pid}`]);
    // Every projection, and the reactors: the run scheduler, the Kubernetes launcher and canceler.
    if (rows.length === allProjections.length + 3) return;
    if (Date.now() > deadline) throw new Error(`${rows.length} of ${allProjections.length + 3} leases held by ${pid}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function delivery(port: number, guid = randomUUID()) {
  const body = JSON.stringify({ action: 'opened', repository: { id: 1, name: 'x', owner: { login: 'y' } }, sender: { id: 2, login: 'z', type: 'User' } });
  return fetch(`http://127.0.0.1:${port}/api/v1/webhooks/github`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-github-event': 'issues', 'x-github-delivery': guid, 'x-hub-signature-256': `sha256=${createHmac('sha256', secret).update(body).digest('hex')}` },
    body,
  });
}

const timed = async <T>(work: () => Promise<T>) => {
  const started = performance.now();
  const value = await work();
  return { value, ms: performance.now() - started };
};

describe('serve from a webhook to a finished run', () => {
  it('a signed run:dev label goes to succeeded on the built-in simulator (no KUBECONFIG)', async () => {
    const store = createEventStore(db.pools.primary);
    await connectHelloWorld(store);
    const { child, port, exited } = await serve(4);
    try {
      await ready(port);
      const all = examples as unknown as { name: string; examples: Record<string, any>[] }[];
      const payload = structuredClone(all.find((e) => e.name === 'issues')!.examples.find((e) => e.action === 'labeled')!);
      payload.label.name = 'run:dev';
      payload.issue.labels = [{ name: 'run:dev' }];
      const body = JSON.stringify(payload);
      const res = await fetch(`http://127.0.0.1:${port}/api/v1/webhooks/github`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-github-event': 'issues', 'x-github-delivery': randomUUID(), 'x-hub-signature-256': `sha256=${createHmac('sha256', secret).update(body).digest('hex')}` },
        body,
      });
      const answer = (await res.json()) as { status: string; run_id: string };
      assert.deepEqual([res.status, answer.status], [202, 'accepted']);
      const deadline = Date.now() + 20_000;
      let types: string[] = [];
      while (!types.includes('RunSucceeded') && Date.now() < deadline) {
        types = (await store.readStream(`run-${answer.run_id}`)).map((e) => e.type);
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.deepEqual(types, ['RunRequested', 'RunScheduled', 'RunNamespacePrepared', 'JobStarted', 'RunSucceeded']);
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
  });
});

/** Whether a process holds a listening TCP socket now (Linux's /proc); undefined where that cannot be read. */
function listensNow(pid: number): boolean | undefined {
  try {
    const listening = new Set<string>();
    for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
      for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
        const fields = line.trim().split(/\s+/);
        if (fields[3] === '0A') listening.add(fields[9]!); // state LISTEN: its inode
      }
    }
    return readdirSync(`/proc/${pid}/fd`).some((fd) => {
      try {
        return listening.has(/^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1] ?? '');
      } catch {
        return false; // closed meanwhile
      }
    });
  } catch {
    return existsSync('/proc/net/tcp') ? false : undefined; // the process is gone, or there is no /proc
  }
}

describe('serve with a setting it cannot take', () => {
  // Found by a review: settings read after the pools, the webhook or the projections had started
  // printed their error and left a process that was ready (200) and did nothing, until SIGTERM.
  const cases: [role: string, name: string, value: string][] = [
    ['all', 'CODEXK8S_LAUNCH_CONCURRENCY', '0'],
    ['worker', 'CODEXK8S_RUN_NAMESPACE_TTL', '-1'],
    ['worker', 'CODEXK8S_RUN_QUOTA_CPU', 'abc'],
    ['all', 'CODEXK8S_RUN_EGRESS_PORTS', '0'],
    ['worker', 'CODEXK8S_AGENT_IMAGE_PULL_SECRET', 'not a docker config'],
    ['api', 'CODEXK8S_WEBHOOK_RATE_LIMIT', '0'],
    ['api', 'CODEXK8S_JWT_TTL', '1s'],
    ['api', 'CODEXK8S_TRIGGER_LABELS', '{bad'],
    ['worker', 'KUBECONFIG', '/nonexistent/kubeconfig'],
  ];
  for (const [role, name, value] of cases) {
    it(`--role ${role} with ${name}=${value}: exits 1 at once, naming the setting, and never answers`, async () => {
      const { child, port, exited, stderr } = await serve(2, role, { [name]: value });
      const answered = (async () => {
        for (;;) {
          if (child.exitCode !== null || child.signalCode !== null) return false;
          // This process's own listening socket, not whoever answers on the port: it was free when
          // chosen, but another test file's server may take it meanwhile (on CI one answered).
          if (listensNow(child.pid!) ?? (await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false))) return true;
          await new Promise((r) => setTimeout(r, 20));
        }
      })();
      const code = await Promise.race([exited, new Promise<'running'>((r) => setTimeout(() => r('running'), 15_000))]);
      if (code === 'running') child.kill('SIGKILL');
      assert.equal(code, 1, `exit code (stderr: ${stderr().trim()})`);
      assert.match(stderr(), new RegExp(name === 'KUBECONFIG' ? 'KUBECONFIG|kubeconfig' : name));
      assert.equal(await answered, false, 'it listened before it refused the setting');
    });
  }
});

describe('serve on a port it cannot have', () => {
  for (const role of ['api', 'worker']) {
    it(`--role ${role}: one line naming CODEXK8S_HTTP_PORT and exit 1 (found by a review: a stack trace)`, async () => {
      const taken = createServer();
      await new Promise<void>((resolve) => taken.listen(0, resolve));
      const port = (taken.address() as { port: number }).port;
      try {
        const { exited, stderr } = await serve(2, role, { CODEXK8S_HTTP_PORT: String(port) });
        assert.equal(await exited, 1, stderr());
        assert.match(stderr(), /CODEXK8S_HTTP_PORT/);
        assert.doesNotMatch(stderr(), /^\s+at /m, 'no stack trace');
      } finally {
        taken.close();
      }
    });
  }
});

describe('serve with small pools', () => {
  for (const poolSize of [1, 2, 3]) {
    it(`CODEXK8S_DATABASE_POOL_SIZE=${poolSize}: every projection leases and catches up, /readyz and the webhook answer, SIGTERM exits`, async () => {
      const { child, port, exited } = await serve(poolSize);
      try {
        await ready(port);
        await leasesHeldBy(child.pid!);
        const store = createEventStore(db.pools.primary);
        await appendRuns(store, randomUUID(), 20);
        for (const p of allProjections) await caughtUp(db.pools.primary, store, p.name);
        const probe = await timed(() => fetch(`http://127.0.0.1:${port}/readyz`));
        assert.equal(probe.value.status, 200);
        assert.ok(probe.ms < 1000, `readyz in ${Math.round(probe.ms)} ms`);
        assert.equal((await delivery(port)).status, 202);
        const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
        assert.match(metrics, /^codexk8s_kubernetes_watch_last_event_seconds \d+/m, 'the time of the last watch event is a metric');
      } finally {
        child.kill('SIGTERM');
      }
      const exit = await timed(() => exited);
      assert.ok(exit.ms < SHUTDOWN_SECONDS * 1000, `exited ${Math.round(exit.ms)} ms after SIGTERM`);
    });
  }

  it('SIGTERM while clients keep their connections busy: each connection closes after its next answer, and the process exits 0 in time (found by a review: it answered on them until the deadline and exited 1)', async () => {
    const { child, port, exited } = await serve(4, 'api');
    await ready(port);
    let done = false;
    let answered = 0;
    const exit = exited.then((code) => {
      done = true;
      return code;
    });
    // Kept-alive connections (fetch's default), each asking again as soon as it has its answer.
    const clients = Array.from({ length: 8 }, async () => {
      while (!done) {
        try {
          await (await fetch(`http://127.0.0.1:${port}/readyz`)).text();
          answered++;
        } catch {
          await new Promise((r) => setTimeout(r, 20)); // refused: the server has stopped listening
        }
      }
    });
    await until(async () => answered > 50, 'the clients to be busy');
    child.kill('SIGTERM');
    const stopped = await timed(() => exit);
    await Promise.all(clients);
    assert.equal(stopped.value, 0, 'exit code');
    assert.ok(stopped.ms < SHUTDOWN_SECONDS * 1000, `exited ${Math.round(stopped.ms)} ms after SIGTERM`);
  });

  it('SIGTERM while the pool is exhausted ends the process within CODEXK8S_SHUTDOWN_TIMEOUT, and another worker takes the leases', async () => {
    const { child, port, exited } = await serve(1);
    const holder = new pg.Client({ connectionString: db.primaryUrl });
    await holder.connect();
    try {
      await ready(port);
      await leasesHeldBy(child.pid!);
      // A delivery whose append waits on a lock this test holds: the pool's only connection is busy.
      const guid = randomUUID();
      await holder.query('SELECT pg_advisory_lock(flow_events_stream_lock_key($1))', [`delivery-${guid}`]);
      const blocked = delivery(port, guid).catch(() => undefined);
      for (let i = 0; i < 200; i++) {
        const { rows } = await holder.query("SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%flow_events_append%'");
        if (rows.length > 0) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      const probe = await timed(() => fetch(`http://127.0.0.1:${port}/readyz`));
      assert.ok(probe.ms < 1000, `readyz answered in ${Math.round(probe.ms)} ms (${probe.value.status}) with the pool exhausted`);
      child.kill('SIGTERM');
      const exit = await timed(() => exited);
      assert.ok(exit.ms < SHUTDOWN_SECONDS * 1000 + 1500, `exited ${Math.round(exit.ms)} ms after SIGTERM`);
      await blocked;
    } finally {
      child.kill('SIGKILL');
      await holder.end();
    }
    const next = await serve(2, 'worker');
    try {
      await leasesHeldBy(next.child.pid!, 10_000);
    } finally {
      next.child.kill('SIGTERM');
      await next.exited;
    }
  });

  for (const [first, second] of [['SIGTERM', 'SIGINT'], ['SIGINT', 'SIGTERM'], ['SIGTERM', 'SIGTERM']] as const) {
    it(`${second} after ${first} while the shutdown waits: exits at once, 1 (found by a review: a SIGINT after a SIGTERM was taken as the first again)`, async () => {
      const { child, port, exited } = await serve(1, 'api');
      const holder = new pg.Client({ connectionString: db.primaryUrl });
      await holder.connect();
      try {
        await ready(port);
        const guid = randomUUID();
        await holder.query('SELECT pg_advisory_lock(flow_events_stream_lock_key($1))', [`delivery-${guid}`]);
        const blocked = delivery(port, guid).catch(() => undefined);
        await until(async () => (await holder.query("SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%flow_events_append%'")).rows.length > 0, 'the delivery to wait on the lock');
        child.kill(first);
        await new Promise((r) => setTimeout(r, 300));
        assert.equal(child.exitCode, null, 'the first signal waits for the work in flight');
        child.kill(second);
        const exit = await timed(() => exited);
        assert.ok(exit.ms < 1000, `exited ${Math.round(exit.ms)} ms after the second signal`);
        assert.equal(exit.value, 1);
        await blocked;
      } finally {
        child.kill('SIGKILL');
        await holder.end();
      }
    });
  }
});

describe('two workers, one killed halfway', () => {
  it('20 runs: every run ends exactly once, the cluster saw one Job create per run, every slot is free', async () => {
    const { startKubeSimulator } = await import('../adapters/kubernetes/simulator/index.js');
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const sim = await startKubeSimulator({ outcome: 'succeed', runSeconds: 0.5 });
    const kubeconfig = join(mkdtempSync(join(tmpdir(), 'codexk8s-test-')), 'kubeconfig');
    writeFileSync(kubeconfig, sim.kubeconfig());
    const store = createEventStore(db.pools.primary);
    const worker = async () => {
      const child = spawn(process.execPath, [join(projectRoot, 'bin', 'codex-k8s.js'), 'serve', '--role', 'worker'], {
        env: { ...process.env, ...db.env, CODEXK8S_HTTP_PORT: String(await freePort()), KUBECONFIG: kubeconfig, CODEXK8S_OPENAI_API_KEY: 'sk-test', CODEXK8S_SLOTS_PER_PROJECT: '4', CODEXK8S_LOG_LEVEL: 'error', CODEXK8S_SHUTDOWN_TIMEOUT: '3' },
        stdio: ['ignore', 'ignore', 'ignore'],
      });
      return { child, exited: new Promise((resolve) => child.once('exit', resolve)) };
    };
    const a = await worker();
    const b = await worker();
    const project = randomUUID();
    const runIds: string[] = [];
    try {
      for (let i = 0; i < 20; i++) {
        const runId = randomUUID();
        runIds.push(runId);
        const e = runRequestedEvent(runId, project);
        await store.append([{ stream: `run-${runId}`, expected: 'no_stream', events: [e] }], { correlationId: `test-${runId}`, actor: { type: 'system', id: 'test' } });
      }
      const ended = async () => {
        let n = 0;
        for (const id of runIds) if ((await store.readStream(`run-${id}`)).some((e) => e.type === 'RunSucceeded')) n++;
        return n;
      };
      const deadline = Date.now() + 60_000;
      while ((await ended()) < 10 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      a.child.kill('SIGKILL'); // halfway: whatever a held, b takes over
      await a.exited;
      while ((await ended()) < 20 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      assert.equal(await ended(), 20, 'every run ended');
      for (const id of runIds) {
        const types = (await store.readStream(`run-${id}`)).map((e) => e.type);
        assert.deepEqual(types, ['RunRequested', 'RunScheduled', 'RunNamespacePrepared', 'JobStarted', 'RunSucceeded'], id);
      }
      assert.equal(sim.state.creates.Job, 20, 'one Job create per run');
      // Every object carries this installation's identity (what keeps another installation's cleanup off them).
      const { installationId } = await import('../adapters/postgres/installation.js');
      const identity = await installationId(db.pools.primary);
      for (const kind of ['Namespace', 'Job']) {
        const made = sim.state.objects(kind).filter((o) => runIds.includes(o.metadata.labels?.['codex-k8s.io/run'] ?? ''));
        assert.ok(made.length > 0 && made.every((o) => o.metadata.labels?.['codex-k8s.io/installation'] === identity), kind);
      }
      for (let n = 1; n <= 4; n++) {
        const slot = (await store.readStream(`slot-${project}-${n}`)).map((e) => e.type);
        assert.equal(slot.at(-1), 'SlotReleased', `slot ${n} is free`);
      }
    } finally {
      a.child.kill('SIGKILL');
      b.child.kill('SIGTERM');
      await b.exited;
      await sim.close();
    }
  });
});
