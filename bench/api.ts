/**
 * npm run bench:api — `GET /api/v1/agent-runs?project_id=…&limit=50` (the first page of a project's
 * runs, newest first) against `codex-k8s serve --role api` reading the replica, with 1,000,000 runs
 * in agent_runs over 100 projects, 8 concurrent clients (autocannon), beside `pgbench -S` on the
 * same database's replica, the two alternating over BENCH_ROUNDS rounds (medians). A third figure
 * in each round is a ceiling: a bare node:http server answering the same page's bytes after two
 * primary-key lookups on the replica (bench/ceiling-server.ts), which is what any Node.js answer
 * that reads the database twice costs here, under the same load generator. And a fourth: pgbench
 * running the page's own statement alone (the one the API sends, for the same project), with the
 * same clients: the pages a second the database gives with no HTTP and no application at all.
 *
 * The runs are written straight into the agent_runs read model with one INSERT … SELECT (folding a
 * million runs' events through the projection would take most of the run and measure something
 * else); the user, the projects and the membership the API authorises on are real events.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import autocannon from 'autocannon';
import { createEventStore } from '../adapters/postgres/event-store.js';
import { createPool } from '../adapters/postgres/pools.js';
import { parseKeyRing } from '../adapters/crypto/keys.js';
import { githubDirectory } from '../adapters/github/directory.js';
import { staffTokens } from '../adapters/http/auth/tokens.js';
import { OWNER_ROLE } from '../adapters/postgres/local-cluster.js';
import { setupCommands } from '../commands/setup.js';
import { runsPageStatement } from '../queries/staff.js';
import { staffSecrets } from '../test/support/secrets.js';
import { benchDatabase, median, pgbenchCommand, pgbenchInit, pgbenchTps, round, rounds, say, seconds, startServe, stopServe } from './support.js';

const RUNS = Number(process.env.BENCH_API_RUNS ?? 1_000_000);
const PROJECTS = 100;
const PAGE = 50;
const { url, ownerUrl, replicaUrl, checkpoint } = await benchDatabase('codexk8s_bench_api');
const replicaOwnerUrl = replicaUrl.replace(/\/\/[^@]+@/, `//${OWNER_ROLE}@`);

// The person and the projects, as events; the user reads one project, of which they are a member.
const pool = createPool(url, 4, 'codex-k8s-bench');
const store = createEventStore(pool);
const meta = () => ({ correlationId: `bench-${randomUUID()}`, actor: { type: 'system' as const, id: 'bench' } });
const nowhere = githubDirectory('http://127.0.0.1:9'); // asked for nothing: no GitHub names are looked up here
const setup = setupCommands({ store, github: nowhere, providers: { github: nowhere }, emailHashKey: parseKeyRing('k', staffSecrets.CODEXK8S_EMAIL_HASH_KEY, {}).current.key, now: () => new Date().toISOString() });
const { userId } = await setup.allowUser({ email: 'bench@example.com', githubLogin: null, platformRole: null }, meta());
const projectIds: string[] = [];
for (let i = 0; i < PROJECTS; i++) projectIds.push((await setup.createProject({ key: `bench-${i}`, name: `Bench ${i}` }, meta())).projectId);
const target = projectIds[0]!;
await setup.addMember({ projectId: target, userId, role: 'read' }, meta());
await pool.end();

say(`loading ${RUNS} runs into agent_runs over ${PROJECTS} projects`);
const owner = createPool(ownerUrl, 1, 'codex-k8s-bench');
// The load is one long statement: the platform's statement timeout (its pools' default) is not for it.
await owner.query('SET statement_timeout = 0');
const started = performance.now();
await owner.query(
  `INSERT INTO agent_runs (id, version, correlation_id, project_id, agent, status, run_payload, learning_mode, slot, created_at, updated_at, finished_at)
   SELECT gen_random_uuid(), 3, 'bench-' || i, ($1::uuid[])[1 + i % $2], 'dev',
          (ARRAY['succeeded','failed','canceled','running','pending'])[1 + i % 5],
          jsonb_build_object('repository', 'github/octo/hello', 'subject', jsonb_build_object('kind', 'issue', 'number', i % 5000), 'agent', 'dev'),
          false, 1 + i % 2, now() - (i || ' seconds')::interval, now(), now() - (i || ' seconds')::interval
     FROM generate_series(1, $3) AS i`,
  [projectIds, PROJECTS, RUNS],
);
await owner.query('ANALYZE agent_runs');
say(`loaded in ${round((performance.now() - started) / 1000, 1)} s`);
pgbenchInit(ownerUrl);
// The replica must hold all of it before anything is measured there.
const primaryLsn = (await owner.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0]!.lsn;
const replica = createPool(replicaOwnerUrl, 1, 'codex-k8s-bench');
for (;;) {
  const { rows } = await replica.query<{ behind: boolean }>('SELECT pg_last_wal_replay_lsn() < $1::pg_lsn AS behind', [primaryLsn]);
  if (!rows[0]!.behind) break;
  await new Promise((r) => setTimeout(r, 200));
}
const onReplica = Number((await replica.query<{ n: string }>('SELECT count(*) AS n FROM agent_runs')).rows[0]!.n);
await replica.end();
await owner.end();
if (onReplica !== RUNS) throw new Error(`the replica holds ${onReplica} runs, not ${RUNS}`);

const { server, port } = await startServe('api', {
  CODEXK8S_DATABASE_URL: url, CODEXK8S_DATABASE_REPLICA_URLS: replicaUrl, CODEXK8S_GITHUB_WEBHOOK_SECRET: 'bench',
  CODEXK8S_DATABASE_POOL_SIZE: '16', CODEXK8S_API_RATE_LIMIT: '1000000',
});
const token = (await staffTokens(parseKeyRing('CODEXK8S_JWT_KEYS', staffSecrets.CODEXK8S_JWT_KEYS, { minBytes: 32 }), { ttlSeconds: 3600 }).issue({ userId, allowance: 1 })).token; // allowed once, above
const path = `/api/v1/agent-runs?project_id=${target}&limit=${PAGE}`;
const first = await fetch(`http://127.0.0.1:${port}${path}`, { headers: { authorization: `Bearer ${token}` } });
const pageBytes = await first.text();
const page = JSON.parse(pageBytes) as { items: { project_id: string }[]; next_cursor: string | null };
if (first.status !== 200 || page.items.length !== PAGE || page.items.some((r) => r.project_id !== target) || !page.next_cursor) {
  throw new Error(`the page is not what the benchmark measures: ${first.status} ${JSON.stringify(page).slice(0, 200)}`);
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
async function pages(at = port): Promise<{ perSecond: number; p50: number; p95: number; p99: number; bad: number }> {
  const latencies: number[] = [];
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon({ url: `http://127.0.0.1:${at}${path}`, connections: 8, duration: seconds * 2, headers: { authorization: `Bearer ${token}` } }, (error, done) => (error ? reject(error) : resolve(done)));
    // Each response's own time (hrtime, fractional ms): autocannon's summary has no p95.
    instance.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => {
      if (status === 200) latencies.push(ms);
    });
  });
  latencies.sort((a, b) => a - b);
  return { perSecond: result['2xx'] / (seconds * 2), p50: percentile(latencies, 50), p95: percentile(latencies, 95), p99: percentile(latencies, 99), bad: result.non2xx + result.errors };
}

// The ceiling's server answers the API's own page, byte for byte.
const scratch = mkdtempSync(join(tmpdir(), 'codexk8s-bench-'));
const bodyFile = join(scratch, 'page.json');
writeFileSync(bodyFile, pageBytes);
// The page's statement with its values written in (pgbench's default simple protocol, as for -S;
// it leaves the colons of the time formats alone, as no variable of that name is set).
const statement = runsPageStatement({ visibleTo: null, projectId: target }, { limit: PAGE });
const literal = (v: string | number | null) => (v === null ? 'NULL' : typeof v === 'number' ? String(v) : `'${v.replaceAll("'", "''")}'`);
const pageScript = join(scratch, 'page.sql');
writeFileSync(pageScript, `${statement.text.replace(/\$(\d+)/g, (_, n: string) => literal(statement.values[Number(n) - 1]!))};\n`);
const ceilingServer = spawn(process.execPath, [join(import.meta.dirname, 'ceiling-server.js'), replicaOwnerUrl, bodyFile], { stdio: ['ignore', 'pipe', 'inherit'] });
process.once('exit', () => ceilingServer.kill('SIGTERM'));
const ceilingPort = Number(String((await once(ceilingServer.stdout!, 'data'))[0]).trim());

const reference: number[] = [];
const perSecond: number[] = [];
const p50: number[] = [];
const p95: number[] = [];
const p99: number[] = [];
const ceiling: number[] = [];
const statementAlone: number[] = [];
let bad = 0;
for (let round_ = 1; round_ <= rounds; round_++) {
  await checkpoint();
  reference.push(pgbenchTps(replicaOwnerUrl, 8, seconds, '-S'));
  say(`round ${round_}: pgbench -S on the replica ${round(reference.at(-1)!)} tps`);
  statementAlone.push(pgbenchTps(replicaOwnerUrl, 8, seconds, { script: pageScript }));
  say(`round ${round_}: pgbench running the page's statement alone ${round(statementAlone.at(-1)!)} pages/s`);
  const r = await pages();
  perSecond.push(r.perSecond);
  p50.push(r.p50);
  p95.push(r.p95);
  p99.push(r.p99);
  bad += r.bad;
  say(`round ${round_}: ${round(r.perSecond)} pages/s, p50 ${round(r.p50, 2)} ms, p95 ${round(r.p95, 2)} ms, p99 ${round(r.p99, 2)} ms${r.bad ? `, ${r.bad} not 200` : ''}`);
  const c = await pages(ceilingPort);
  if (c.bad) throw new Error(`the ceiling's server answered ${c.bad} requests with other than 200`);
  ceiling.push(c.perSecond);
  say(`round ${round_}: ceiling (bare node:http, two primary-key lookups, the same page's bytes) ${round(c.perSecond)} answers/s`);
}
await stopServe(server);
ceilingServer.kill('SIGTERM');
const ratio = median(perSecond) / median(reference);
console.log(
  JSON.stringify({
    bench: 'api',
    runs: RUNS,
    page: PAGE,
    clients: 8,
    rounds,
    requests_per_s: round(median(perSecond)),
    latency_p50_ms: round(median(p50), 2),
    latency_p95_ms: round(median(p95), 2),
    latency_p99_ms: round(median(p99), 2),
    non_200: bad,
    reference: `${pgbenchCommand(8, '-S')} tps on the replica`,
    reference_value: round(median(reference)),
    ratio: round(ratio, 3),
    ceiling: 'bare node:http answering the same page after two primary-key lookups (node-postgres) on the replica',
    ceiling_requests_per_s: round(median(ceiling)),
    ceiling_ratio: round(median(ceiling) / median(reference), 3),
    page_statement_alone: `${pgbenchCommand(8, { script: 'page.sql' })} (the page's statement, no HTTP, no application)`,
    page_statement_per_s: round(median(statementAlone)),
    page_statement_ratio: round(median(statementAlone) / median(reference), 3),
    targets_met: median(p95) <= 10 && ratio >= 0.25,
  }),
);
process.exit(0);
