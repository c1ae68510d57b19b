/**
 * npm run bench:launch — the time from a webhook's 202 to the run's Job being created on the
 * Kubernetes API simulator (the real client over HTTP, through the scheduler and the launcher of
 * `codex-k8s serve`), p50 and p99 over BENCH_LAUNCH_RUNS runs (200), sent by 8 concurrent
 * senders as fast as they go, or paced at BENCH_LAUNCH_RATE deliveries per second; and runs launched
 * per second. Slots are ample (100 per project), so queueing for a slot
 * is not what is measured. The platform runs as one `serve --role all` process; BENCH_LAUNCH_ROLES=split
 * runs a `--role api` process (the webhook) and a `--role worker` one (projections, scheduler,
 * launcher), as deploy/base does. `pgbench -N` on the same database is the reference, measured in the run.
 * After the runs, a ceiling: the same runs' objects created through the worker's client against a
 * fresh simulator of the same kind, with no database at all (bench/kube-ceiling.ts), the most runs a second any launcher
 * could start here; when deliveries are accepted faster than that, a burst's launches must queue.
 */
import { spawn } from 'node:child_process';
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import examples from '@octokit/webhooks-examples' with { type: 'json' };
import { KubeConfig, Watch } from '@kubernetes/client-node';
import { createEventStore } from '../adapters/postgres/event-store.js';
import { createPool } from '../adapters/postgres/pools.js';
import { startKubeSimulator } from '../adapters/kubernetes/simulator/index.js';
import { connectHelloWorld } from '../test/support/hello-world.js';
import { cpuSampler, perUnit } from './cpu-time.js';
import { benchDatabase, startServe, pgbenchCommand, pgbenchInit, pgbenchTps, round, say, stopServe } from './support.js';

const RUNS = Number(process.env.BENCH_LAUNCH_RUNS ?? 200);
/** Deliveries per second in all (paced); unset: as fast as the 8 senders go (a burst). */
const RATE = process.env.BENCH_LAUNCH_RATE ? Number(process.env.BENCH_LAUNCH_RATE) : undefined;
const SENDERS = 8;
const secret = randomBytes(20).toString('hex');
const { url, ownerUrl, replicaUrl, cluster, checkpoint } = await benchDatabase('codexk8s_bench_launch');

// The example deliveries' repository and sender, connected through a local fake of GitHub's API.
const pool = createPool(url, 2, 'codex-k8s-bench');
await connectHelloWorld(createEventStore(pool));
await pool.end();

pgbenchInit(ownerUrl);
await checkpoint();
const reference = pgbenchTps(ownerUrl, 8);
say(`pgbench -N ${round(reference)} tps`);
await checkpoint();

// The cluster: the simulator, in this process, so Job creations are seen as they happen.
const sim = await startKubeSimulator({ outcome: 'succeed', runSeconds: 0.2 });
const kubeconfig = join(mkdtempSync(join(tmpdir(), 'codexk8s-bench-')), 'kubeconfig');
writeFileSync(kubeconfig, sim.kubeconfig());
const created = new Map<string, number>();
const kc = new KubeConfig();
kc.loadFromString(sim.kubeconfig());
const watching = await new Watch(kc).watch('/apis/batch/v1/jobs', {}, (phase: string, job: { metadata?: { labels?: Record<string, string> } }) => {
  const runId = job.metadata?.labels?.['codex-k8s.io/run'];
  if (phase === 'ADDED' && runId && !created.has(runId)) created.set(runId, performance.now());
}, () => {});

const ROLES = process.env.BENCH_LAUNCH_ROLES === 'split' ? ['api', 'worker'] as const : ['all'] as const;
const servers = await Promise.all(ROLES.map((role) => startServe(role, {
  CODEXK8S_DATABASE_URL: url, CODEXK8S_DATABASE_REPLICA_URLS: replicaUrl, CODEXK8S_GITHUB_WEBHOOK_SECRET: secret,
  CODEXK8S_SLOTS_PER_PROJECT: '100', KUBECONFIG: kubeconfig, CODEXK8S_OPENAI_API_KEY: 'sk-bench',
})));
await new Promise((r) => setTimeout(r, 1500)); // the worker's leases
const { port } = servers[0]!; // the webhook's

type Labeled = { label: { name: string }; issue: { number: number; labels: { name: string }[]; updated_at: string } };
const template = structuredClone((examples as unknown as { name: string; examples: (Labeled & { action?: string })[] }[]).find((e) => e.name === 'issues')!.examples.find((e) => e.action === 'labeled')!);
template.label.name = 'run:dev';
template.issue.labels = [{ name: 'run:dev' }];
const accepted = new Map<string, number>();
let next = 0;
// Where the burst's CPU goes: serve, this process (the simulator, standing in for the API server, and the senders), PostgreSQL.
const cpu = cpuSampler({ self: 'simulator_and_senders', processes: { serve: servers.map(({ server }) => server.pid!) }, cluster });
const cpuBefore = cpu.sample();
const started = performance.now();
say(`${RUNS} run:dev deliveries from ${SENDERS} concurrent senders${RATE ? `, paced at ${RATE}/s` : ', as fast as they go'}, to serve --role ${ROLES.join(' and --role ')}`);
await Promise.all(Array.from({ length: SENDERS }, async () => {
  while (next < RUNS) {
    const n = ++next;
    if (RATE) {
      const due = started + ((n - 1) * 1000) / RATE;
      if (due > performance.now()) await new Promise((r) => setTimeout(r, due - performance.now()));
    }
    template.issue.number = 100_000 + n;
    template.issue.updated_at = new Date(Date.now() + n).toISOString();
    const body = JSON.stringify(template);
    const res = await fetch(`http://127.0.0.1:${port}/api/v1/webhooks/github`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-github-event': 'issues', 'x-github-delivery': randomUUID(), 'x-hub-signature-256': `sha256=${createHmac('sha256', secret).update(body).digest('hex')}` },
      body,
    });
    const answer = (await res.json()) as { status: string; run_id?: string };
    if (res.status !== 202 || answer.status !== 'accepted') throw new Error(`delivery ${n}: ${res.status} ${JSON.stringify(answer)}`);
    accepted.set(answer.run_id!, performance.now());
  }
}));
const acceptedIn = (performance.now() - started) / 1000;
const deadline = Date.now() + 60_000;
while ([...accepted.keys()].some((id) => !created.has(id)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
const cpuAfter = cpu.sample();
const elapsed = (Math.max(...[...accepted.keys()].map((id) => created.get(id) ?? 0)) - started) / 1000;
const latencies = [...accepted].map(([id, at]) => (created.get(id) ?? Number.POSITIVE_INFINITY) - at).sort((a, b) => a - b);
const percentile = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))]!;
const missing = latencies.filter((l) => !Number.isFinite(l)).length;
await Promise.all(servers.map(({ server }) => stopServe(server)));
watching.abort();
await sim.close();
// The ceiling against a fresh simulator of the same kind, empty and watched by no one, as the burst's was when it began.
const fresh = await startKubeSimulator({ outcome: 'succeed', runSeconds: 0.2 });
const freshKubeconfig = `${kubeconfig}-ceiling`;
writeFileSync(freshKubeconfig, fresh.kubeconfig());
const ceilingRun = spawn(process.execPath, [join(import.meta.dirname, 'kube-ceiling.js'), freshKubeconfig, String(RUNS)], { stdio: ['ignore', 'pipe', 'inherit'] });
let ceilingOut = '';
ceilingRun.stdout.on('data', (chunk: Buffer) => (ceilingOut += chunk.toString()));
const [ceilingCode] = (await once(ceilingRun, 'exit')) as [number | null];
const ceiling = Number(ceilingOut.trim());
if (ceilingCode !== 0 || !Number.isFinite(ceiling)) throw new Error(`the ceiling's run failed (exit ${ceilingCode}): ${ceilingOut.slice(0, 200)}`);
say(`ceiling: ${RUNS} runs' objects created with no database, ${round(ceiling, 1)} runs/s`);
await fresh.close();
say(`${accepted.size - missing} of ${accepted.size} Jobs created; p50 ${round(percentile(50), 1)} ms, p99 ${round(percentile(99), 1)} ms`);
// The burst's CPU per launched run (its delivery, its launch, and the outcomes that came meanwhile):
// at that cost, the machine's cores give at most cpuBound runs a second, whoever gets them first.
const cpuPerRun = cpu.available ? perUnit(cpuBefore, cpuAfter, accepted.size - missing) : {};
const cpuTotal = Object.values(cpuPerRun).reduce((a, b) => a + b, 0);
const cores = availableParallelism();
const cpuBound = cpuTotal > 0 ? (cores * 1000) / cpuTotal : Number.NaN;
if (Number.isFinite(cpuBound)) {
  say(`CPU per launched run: ${Object.entries(cpuPerRun).map(([part, ms]) => `${part} ${round(ms, 1)} ms`).join(', ')}; ${cores} cores give at most ${round(cpuBound, 1)} runs/s at that cost`);
} else say('CPU per launched run: not measured (no /proc, or the database servers not readable)');
console.log(
  JSON.stringify({
    bench: 'launch',
    runs: RUNS,
    senders: SENDERS,
    offered_per_s: RATE ?? 'burst',
    serve_roles: ROLES.join('+'),
    jobs_missing: missing,
    launch_p50_ms: round(percentile(50), 1),
    launch_p99_ms: round(percentile(99), 1),
    // Beside the launch rate: when deliveries are accepted faster than runs launch, the launches queue.
    accepted_per_s: round(accepted.size / acceptedIn, 1),
    runs_launched_per_s: round((accepted.size - missing) / elapsed, 1),
    ceiling: 'the same objects created through the same client, against a fresh simulator, no database',
    ceiling_runs_per_s: round(ceiling, 1),
    cpu_ms_per_run: Object.fromEntries(Object.entries(cpuPerRun).map(([part, ms]) => [part, round(ms, 1)])),
    cores,
    cpu_bound_runs_per_s: Number.isFinite(cpuBound) ? round(cpuBound, 1) : null,
    reference: `${pgbenchCommand(8)} tps`,
    reference_value: round(reference),
  }),
);
process.exit(0);
