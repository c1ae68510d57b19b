/**
 * npm run bench:webhooks — signed real issues.labeled deliveries (distinct GUIDs, each a new
 * labelling, so each starts a run) against `codex-k8s serve --role api`, with autocannon; beside
 * `pgbench -N` on the same database, the two alternating over BENCH_ROUNDS rounds (medians).
 */
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import autocannon from 'autocannon';
import examples from '@octokit/webhooks-examples' with { type: 'json' };
import { createEventStore } from '../adapters/postgres/event-store.js';
import { createPool } from '../adapters/postgres/pools.js';
import { connectHelloWorld } from '../test/support/hello-world.js';
import { benchDatabase, startServe, median, pgbenchCommand, pgbenchInit, pgbenchTps, round, rounds, say, seconds, stopServe } from './support.js';

const secret = randomBytes(20).toString('hex');
const { url, ownerUrl, replicaUrl, checkpoint } = await benchDatabase('codexk8s_bench_webhooks');

// The example deliveries' repository and sender, connected through a local fake of GitHub's API.
const pool = createPool(url, 2, 'codex-k8s-bench');
await connectHelloWorld(createEventStore(pool));
await pool.end();

const { server, port } = await startServe('api', { CODEXK8S_DATABASE_URL: url, CODEXK8S_DATABASE_REPLICA_URLS: replicaUrl, CODEXK8S_GITHUB_WEBHOOK_SECRET: secret, CODEXK8S_DATABASE_POOL_SIZE: '16' });

type Labeled = { action: string; label: { name: string }; issue: { number: number; labels: { name: string }[]; updated_at: string } };
const all = examples as unknown as { name: string; examples: Labeled[] }[];
const template = structuredClone(all.find((e) => e.name === 'issues')!.examples.find((e) => e.action === 'labeled')!);
template.label.name = 'run:dev';
template.issue.labels = [{ name: 'run:dev' }];

// Signed bodies are made before each phase, so the load generator's own CPU stays out of the figure.
// Each is a distinct labelling (a new run) of its own issue, as a platform with many issues sees:
// a run is recorded in its issue's subject stream, and two writes to one stream never share a
// statement. More than a phase can use, so none is a duplicate.
let issueNumber = 0;
function signedBodies(count: number) {
  return Array.from({ length: count }, () => {
    template.issue.number = ++issueNumber;
    template.issue.updated_at = new Date(Date.now() + Math.random() * 1e12).toISOString();
    const body = JSON.stringify(template);
    return { body, signature: `sha256=${createHmac('sha256', secret).update(body).digest('hex')}` };
  });
}

async function deliveries(): Promise<autocannon.Result> {
  const bodies = signedBodies(4000 * seconds * 2);
  let next = 0;
  return autocannon({
    url: `http://127.0.0.1:${port}/api/v1/webhooks/github`,
    connections: 8,
    duration: seconds * 2,
    requests: [
      {
        method: 'POST',
        setupRequest: (req) => {
          const { body, signature } = bodies[next++ % bodies.length]!;
          return {
            ...req,
            body,
            headers: { 'content-type': 'application/json', 'x-github-event': 'issues', 'x-github-delivery': randomUUID(), 'x-hub-signature-256': signature },
          };
        },
      },
    ],
  });
}

pgbenchInit(ownerUrl);
const reference: number[] = [];
const perSecond: number[] = [];
const p50: number[] = [];
const p99: number[] = [];
let non2xx = 0;
for (let round_ = 1; round_ <= rounds; round_++) {
  await checkpoint();
  reference.push(pgbenchTps(ownerUrl, 8));
  say(`round ${round_}: pgbench -N ${round(reference.at(-1)!)} tps`);
  await checkpoint();
  say(`round ${round_}: autocannon, 8 connections, ${seconds * 2} s, against serve on port ${port}`);
  const result = await deliveries();
  non2xx += result.non2xx + result.errors;
  perSecond.push(result['2xx'] / (seconds * 2));
  p50.push(result.latency.p50);
  p99.push(result.latency.p99);
  say(`round ${round_}: deliveries ${round(perSecond.at(-1)!)}/s, p50 ${p50.at(-1)} ms, p99 ${p99.at(-1)} ms${result.non2xx + result.errors > 0 ? `, non-2xx ${result.non2xx}, errors ${result.errors}` : ''}`);
}
await stopServe(server);
console.log(
  JSON.stringify({
    bench: 'webhooks',
    rounds,
    deliveries_per_s: round(median(perSecond)),
    latency_p50_ms: median(p50),
    latency_p99_ms: median(p99),
    latency_p99_worst_round_ms: Math.max(...p99),
    non_2xx: non2xx,
    reference: `${pgbenchCommand(8)} tps`,
    reference_value: round(median(reference)),
    ratio: round(median(perSecond) / median(reference), 2),
  }),
);
