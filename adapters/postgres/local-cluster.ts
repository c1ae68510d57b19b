import { execFileSync, spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync, appendFileSync, chmodSync, lstatSync, realpathSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { postgresFor, type PostgresChoice } from './distribution.js';

/**
 * The local development PostgreSQL: a primary and one asynchronous streaming replica, with
 * pgvector, under `.codexk8s/pg` of the checkout, on loopback ports derived from the checkout's path
 * (so two checkouts on one machine do not collide). It installs what is missing from Debian's
 * packages and builds pgvector from Debian's source package.
 */
export class LocalClusterError extends Error {
  override readonly name = 'LocalClusterError';
}

/** The role the platform runs as: it can append to and read the log and write read models, nothing else. */
export const APP_ROLE = 'codexk8s';
/** The role migrations run as: it owns the schema, the log and the read models. */
export const OWNER_ROLE = 'codexk8s_owner';
/** The group role the migrations grant the platform's privileges to (see migrations/0006). */
export const PLATFORM_GROUP = 'codexk8s_platform';
export const APP_DATABASE = 'codexk8s';
/**
 * The distribution's PostgreSQL (adapters/postgres/distribution.ts); a release the table does not
 * know falls back to Debian 12's choice, which builds pgvector from source.
 */
const choice: PostgresChoice = (existsSync('/etc/os-release') && postgresFor(readFileSync('/etc/os-release', 'utf8'))) || postgresFor('ID=debian\nVERSION_ID=12\n')!;
const PG_MAJOR = choice.major;
const REPLICA_SLOT = 'codexk8s_replica_1';

export interface LocalCluster {
  root: string;
  dataDir: string;
  primary: { dir: string; port: number };
  replica: { dir: string; port: number };
}

export type Say = (line: string) => void;

/** CODEXK8S_LOCAL_PG_PORT: the primary's port, the replica's the next one; unset or empty, one derived from the checkout's path. */
function localPort(): number | undefined {
  const raw = process.env.CODEXK8S_LOCAL_PG_PORT?.trim();
  if (!raw) return undefined;
  if (!/^\d{4,5}$/.test(raw) || Number(raw) < 1024 || Number(raw) > 65534) {
    throw new LocalClusterError('CODEXK8S_LOCAL_PG_PORT must be a port from 1024 to 65534 (the replica takes the next one)');
  }
  return Number(raw);
}

export function localCluster(root: string): LocalCluster {
  const base = localPort() ?? 20000 + (createHash('sha256').update(realpathSync(root)).digest().readUInt16BE(0) % 20000) * 2;
  const dataDir = join(root, '.codexk8s', 'pg');
  // The servers get the real path: when .codexk8s/pg links elsewhere, the postgres user may not be
  // able to pass through the checkout to follow the link.
  const serverDir = existsSync(dataDir) ? realpathSync(dataDir) : dataDir;
  return {
    root,
    dataDir,
    primary: { dir: join(serverDir, 'primary'), port: base },
    replica: { dir: join(serverDir, 'replica'), port: base + 1 },
  };
}

export const urlFor = (port: number, database = APP_DATABASE, user = APP_ROLE) => `postgres://${user}@127.0.0.1:${port}/${database}`;

export function envLines(c: LocalCluster, database = APP_DATABASE): string[] {
  return [
    `export CODEXK8S_DATABASE_URL=${urlFor(c.primary.port, database)}`,
    `export CODEXK8S_DATABASE_OWNER_URL=${urlFor(c.primary.port, database, OWNER_ROLE)}`,
    `export CODEXK8S_DATABASE_REPLICA_URLS=${urlFor(c.replica.port, database)}`,
  ];
}

// --- running commands --------------------------------------------------------------------------

const isRoot = () => process.getuid?.() === 0;

function run(cmd: string, args: string[], what: string, options: SpawnSyncOptions = {}): string {
  const result = spawnSync(cmd, args, { encoding: 'utf8', ...options });
  if (result.error) throw new LocalClusterError(`${what}: ${result.error.message}`);
  if (result.status !== 0) {
    const tail = `${result.stderr ?? ''}${result.stdout ?? ''}`.trim().split('\n').slice(-5).join(' | ');
    throw new LocalClusterError(`${what} failed (exit ${result.status}): ${tail}`);
  }
  return String(result.stdout ?? '');
}

/** Runs a PostgreSQL server tool as the `postgres` user when we are root (initdb refuses root). */
function asServerUser(binDir: string, tool: string, args: string[], what: string): string {
  const path = join(binDir, tool);
  return isRoot() ? run('runuser', ['-u', 'postgres', '--', path, ...args], what, { cwd: '/' }) : run(path, args, what);
}

// --- installing --------------------------------------------------------------------------------

export function findBinDir(): string | undefined {
  const dir = `/usr/lib/postgresql/${PG_MAJOR}/bin`;
  return existsSync(join(dir, 'postgres')) && existsSync(join(dir, 'pg_basebackup')) ? dir : undefined;
}

function aptInstall(packages: string[], say: Say): void {
  if (!isRoot()) {
    throw new LocalClusterError(`missing Debian packages ${packages.join(' ')}: run \`sudo apt-get install -y ${packages.join(' ')}\` and try again`);
  }
  say(`installing ${packages.join(' ')} from Debian's packages`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  try {
    run('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...packages], 'apt-get install', { env });
  } catch {
    run('apt-get', ['update', '-q'], 'apt-get update', { env });
    run('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...packages], 'apt-get install', { env });
  }
}

function ensureServer(say: Say): string {
  const found = findBinDir();
  if (found) return found;
  aptInstall([`postgresql-${PG_MAJOR}`, `postgresql-client-${PG_MAJOR}`], say);
  const dir = findBinDir();
  if (!dir) throw new LocalClusterError(`PostgreSQL ${PG_MAJOR} was installed but /usr/lib/postgresql/${PG_MAJOR}/bin has no server`);
  return dir;
}

const vectorControl = () => `/usr/share/postgresql/${PG_MAJOR}/extension/vector.control`;

/** The machine's Debian mirror, read from its own apt sources, so no host is named here. */
function debianMirror(): string {
  const candidates = ['/etc/apt/sources.list.d/debian.sources', '/etc/apt/sources.list'];
  for (const file of candidates) {
    if (!existsSync(file)) continue;
    const text = readFileSync(file, 'utf8');
    const deb822 = /^URIs:\s*(\S+)/m.exec(text.split(/\n\s*\n/).find((s) => !/security/.test(s)) ?? '');
    if (deb822?.[1]) return deb822[1];
    const oneLine = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+\S+/m.exec(text.split('\n').filter((l) => !/security/.test(l)).join('\n'));
    if (oneLine?.[1]) return oneLine[1];
  }
  throw new LocalClusterError('cannot find a Debian mirror in /etc/apt/sources.list(.d): install pgvector for PostgreSQL 15 by hand');
}

/**
 * apt options for a Debian release's archive through a throwaway source list in `work`, leaving the
 * machine's apt sources untouched (trixie has what bookworm lacks: pgvector's source, kubectl).
 */
export function debianApt(work: string, kind: 'deb' | 'deb-src', suite: 'bookworm' | 'trixie'): string[] {
  const sourceList = join(work, 'sources.list');
  const lists = join(work, 'lists');
  mkdirSync(join(lists, 'partial'), { recursive: true });
  writeFileSync(sourceList, `${kind} [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${debianMirror()} ${suite} main\n`);
  return ['-o', `Dir::Etc::SourceList=${sourceList}`, '-o', 'Dir::Etc::SourceParts=/dev/null', '-o', `Dir::State::Lists=${lists}`, '-o', `Dir::Cache::archives=${work}`];
}

/** A tool of Debian's archive, unpacked into `.codexk8s/tools`: which package, of which release, and its binary. */
export interface DebianTool {
  package: string;
  version: string;
  suite: 'bookworm' | 'trixie';
  binary: string;
}

/** Debian trixie's kubectl, with its kustomize: the tests run it against the simulator and render the deploy manifests with it. */
export const KUBECTL: DebianTool = { package: 'kubectl', version: '1.32.3+ds-2', suite: 'trixie', binary: 'usr/bin/kubectl' };
/** Debian's ShellCheck, of this machine's release: the tests lint the bootstrap and deploy scripts with it. */
export const SHELLCHECK: DebianTool = { package: 'shellcheck', version: '0.9.0-1', suite: 'bookworm', binary: 'usr/bin/shellcheck' };

/**
 * A Debian tool unpacked into `<root>/.codexk8s/tools/<name>` through a throwaway source list,
 * installing nothing on the machine. Returns its path.
 */
export function ensureDebianTool(root: string, tool: DebianTool, say: Say): string {
  const target = join(root, '.codexk8s', 'tools', tool.binary.split('/').at(-1)!);
  if (existsSync(target)) return target;
  const work = mkdtempSync(join(tmpdir(), `codexk8s-${tool.package}-`));
  try {
    const aptOptions = debianApt(work, 'deb', tool.suite);
    say(`fetching ${tool.package} ${tool.version} (Debian ${tool.suite})`);
    run('apt-get', [...aptOptions, 'update', '-q'], `apt-get update (${tool.package} source list)`);
    // The version is named: apt would otherwise look for the version a machine may have installed from elsewhere.
    run('apt-get', [...aptOptions, 'download', '-q', `${tool.package}=${tool.version}`], `apt-get download ${tool.package}`, { cwd: work });
    const deb = readdirSync(work).find((f) => f.startsWith(`${tool.package}_`) && f.endsWith('.deb'));
    if (!deb) throw new LocalClusterError(`apt-get download ${tool.package} fetched no .deb`);
    run('dpkg-deb', ['-x', deb, 'unpacked'], `unpack ${tool.package}`, { cwd: work });
    mkdirSync(join(root, '.codexk8s', 'tools'), { recursive: true });
    copyFileSync(join(work, 'unpacked', tool.binary), target);
    chmodSync(target, 0o755);
    return target;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function ensurePgvector(say: Say): void {
  if (existsSync(vectorControl())) return;
  if (choice.pgvectorPackage) {
    aptInstall([choice.pgvectorPackage], say);
    if (!existsSync(vectorControl())) throw new LocalClusterError(`${choice.pgvectorPackage} was installed but ${vectorControl()} is missing`);
    return;
  }
  if (!isRoot()) throw new LocalClusterError(`pgvector is missing (${vectorControl()}): run \`sudo npx codex-k8s db up\` once to build it`);
  aptInstall([`postgresql-server-dev-${PG_MAJOR}`, 'make', 'gcc', 'libc6-dev', 'dpkg-dev'], say);
  // Debian bookworm has no pgvector package; trixie's source package builds against PostgreSQL 15.
  // apt fetches it through a throwaway source list, leaving the machine's apt sources untouched.
  const work = mkdtempSync(join(tmpdir(), 'codexk8s-pgvector-'));
  try {
    const aptOptions = debianApt(work, 'deb-src', 'trixie');
    say('fetching the pgvector source package (Debian trixie)');
    run('apt-get', [...aptOptions, 'update', '-q'], 'apt-get update (pgvector source list)');
    run('apt-get', [...aptOptions, 'source', '--download-only', '-q', 'pgvector'], 'apt-get source pgvector', { cwd: work });
    const orig = readdirSync(work).find((f) => /^pgvector_.*\.orig\.tar\.(gz|xz)$/.test(f));
    if (!orig) throw new LocalClusterError('apt-get source pgvector fetched no .orig tarball');
    run('tar', ['xf', orig], 'unpack pgvector', { cwd: work });
    const srcDir = readdirSync(work).find((f) => /^pgvector-[\d.]+$/.test(f));
    if (!srcDir) throw new LocalClusterError('the pgvector tarball has no pgvector-<version> folder');
    say(`building ${srcDir}`);
    // OPTFLAGS="" : no -march=native, so the build runs on any machine of this architecture.
    const pgConfig = `PG_CONFIG=/usr/lib/postgresql/${PG_MAJOR}/bin/pg_config`;
    run('make', ['-j2', 'OPTFLAGS=', pgConfig], 'make pgvector', { cwd: join(work, srcDir) });
    run('make', ['install', 'OPTFLAGS=', pgConfig], 'make install pgvector', { cwd: join(work, srcDir) });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  if (!existsSync(vectorControl())) throw new LocalClusterError(`pgvector built but ${vectorControl()} is missing`);
}

// --- the data folder -----------------------------------------------------------------------------

/**
 * When we run as root the server runs as `postgres`, which must reach the data folder. A checkout
 * inside a private folder (mode 700) is out of its reach; then the data lives under /var/lib and
 * `.codexk8s/pg` links there.
 */
function ensureDataDir(c: LocalCluster, say: Say): void {
  if (existsSync(c.dataDir)) return;
  mkdirSync(join(c.root, '.codexk8s'), { recursive: true });
  if (!isRoot()) {
    mkdirSync(c.dataDir, { recursive: true });
    return;
  }
  const reachable = spawnSync('runuser', ['-u', 'postgres', '--', 'test', '-x', join(c.root, '.codexk8s')]).status === 0;
  if (reachable) {
    mkdirSync(c.dataDir, { recursive: true });
  } else {
    const elsewhere = join('/var/lib/codexk8s', createHash('sha256').update(c.root).digest('hex').slice(0, 16));
    say(`the postgres user cannot reach ${c.root}; keeping the data in ${elsewhere}`);
    rmSync(elsewhere, { recursive: true, force: true });
    mkdirSync(elsewhere, { recursive: true });
    symlinkSync(elsewhere, c.dataDir);
  }
  execFileSync('chown', ['postgres:postgres', realpathSync(c.dataDir)]);
  chmodSync(realpathSync(c.dataDir), 0o700);
}

function isRunning(binDir: string, dir: string): boolean {
  if (!existsSync(join(dir, 'PG_VERSION'))) return false;
  const path = join(binDir, 'pg_ctl');
  const args = ['status', '-D', dir];
  const r = isRoot() ? spawnSync('runuser', ['-u', 'postgres', '--', path, ...args], { cwd: '/' }) : spawnSync(path, args);
  return r.status === 0;
}

function start(binDir: string, dir: string, what: string, port: number, say: Say): void {
  if (isRunning(binDir, dir)) return;
  say(`starting the ${what}`);
  const log = join(dir, 'server.log');
  // pg_ctl appends to the log: only what this start adds is its reason.
  const before = existsSync(log) ? statSync(log).size : 0;
  try {
    asServerUser(binDir, 'pg_ctl', ['start', '-w', '-t', '60', '-D', dir, '-l', log], `starting the ${what} (see ${log})`);
  } catch (error) {
    // pg_ctl only says "could not start server": the reason is in the server's log.
    const said = serverComplaint(log, before);
    const taken = /Address already in use/.test(said)
      ? `; port ${port} is taken by another process (a server of a checkout deleted while it ran stops within a minute): stop it, or choose other ports with CODEXK8S_LOCAL_PG_PORT`
      : '';
    throw new LocalClusterError(`${(error as Error).message}${said ? `; the server said: ${said}` : ''}${taken}`);
  }
}

/** The last FATAL, ERROR and "could not" lines a server's log gained after `from` (bytes), for an error message. */
function serverComplaint(log: string, from: number): string {
  let text = '';
  try {
    text = readFileSync(log).subarray(from).toString('utf8');
  } catch {
    return '';
  }
  const lines = text.split('\n').slice(-30).filter((line) => /FATAL|ERROR|could not/.test(line));
  return lines.map((line) => line.replace(/^.*?(FATAL|ERROR|LOG|WARNING):\s*/, '$1: ')).slice(-3).join(' | ').slice(0, 600);
}

const serverSettings = (port: number) => `
# codex-k8s local development settings
listen_addresses = '127.0.0.1'
port = ${port}
unix_socket_directories = ''
max_connections = 300
shared_buffers = 256MB
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
hot_standby = on
hot_standby_feedback = on
wal_keep_size = 256MB
max_wal_size = 2GB
log_min_messages = warning
log_line_prefix = '%m [%p] %q%u@%d '
`;

function initPrimary(binDir: string, c: LocalCluster, say: Say): void {
  if (existsSync(join(c.primary.dir, 'PG_VERSION'))) return;
  say(`initialising the primary in ${c.primary.dir}`);
  asServerUser(binDir, 'initdb', ['-D', c.primary.dir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C.UTF-8'], 'initdb');
  appendAsServerUser(join(c.primary.dir, 'postgresql.conf'), serverSettings(c.primary.port));
  // Loopback only, no passwords: a development database on this machine.
  writeAsServerUser(
    join(c.primary.dir, 'pg_hba.conf'),
    'host all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 trust\n',
  );
}

function writeAsServerUser(file: string, text: string): void {
  writeFileSync(file, text);
  if (isRoot()) execFileSync('chown', ['postgres:postgres', file]);
}

function appendAsServerUser(file: string, text: string): void {
  appendFileSync(file, text);
  if (isRoot()) execFileSync('chown', ['postgres:postgres', file]);
}

/** One short-lived connection for an administrative step (setup, status, tests, benchmarks). */
export async function withClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/**
 * The two roles and the database: the owner (migrations; it owns the schema, the log and the read
 * models) and the platform (a member of the group the migrations grant to; it cannot alter, disable
 * a trigger on, or truncate the log). A database made by an earlier version, owned by the platform
 * role, is handed to the owner.
 */
async function ensureRolesAndDatabase(c: LocalCluster): Promise<void> {
  const admin = urlFor(c.primary.port, 'postgres', 'postgres');
  await withClient(admin, async (db) => {
    const exists = async (role: string) => ((await db.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role])).rowCount ?? 0) > 0;
    // CREATEROLE: migration 0006 creates the platform group where it is missing (as on a fresh cluster).
    if (!(await exists(OWNER_ROLE))) await db.query(`CREATE ROLE ${OWNER_ROLE} LOGIN CREATEDB CREATEROLE`);
    if (!(await exists(PLATFORM_GROUP))) await db.query(`CREATE ROLE ${PLATFORM_GROUP} NOLOGIN`);
    if (!(await exists(APP_ROLE))) await db.query(`CREATE ROLE ${APP_ROLE} LOGIN`);
    await db.query(`ALTER ROLE ${APP_ROLE} NOCREATEDB`);
    await db.query(`GRANT ${PLATFORM_GROUP} TO ${APP_ROLE}`);
    await db.query(`GRANT ${PLATFORM_GROUP} TO ${OWNER_ROLE} WITH ADMIN OPTION`);
    // A long writing transaction holds every reader of the log back (README: the event log).
    await db.query(`ALTER ROLE ${APP_ROLE} SET statement_timeout = '30s'`);
    await db.query(`ALTER ROLE ${APP_ROLE} SET idle_in_transaction_session_timeout = '15s'`);
    const database = await db.query<{ owner: string }>('SELECT pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = $1', [APP_DATABASE]);
    if (database.rowCount === 0) await db.query(`CREATE DATABASE ${APP_DATABASE} OWNER ${OWNER_ROLE}`);
    else if (database.rows[0]!.owner !== OWNER_ROLE) await db.query(`ALTER DATABASE ${APP_DATABASE} OWNER TO ${OWNER_ROLE}`);
  });
  await withClient(urlFor(c.primary.port, APP_DATABASE, 'postgres'), async (db) => {
    await db.query(`REASSIGN OWNED BY ${APP_ROLE} TO ${OWNER_ROLE}`);
  });
  // template1 carries pgvector too, so every database the platform or its tests create has it.
  for (const database of ['template1', APP_DATABASE]) {
    await withClient(urlFor(c.primary.port, database, 'postgres'), (db) => db.query('CREATE EXTENSION IF NOT EXISTS vector'));
  }
}

function initReplica(binDir: string, c: LocalCluster, say: Say): void {
  if (existsSync(join(c.replica.dir, 'PG_VERSION'))) return;
  say(`copying the primary into the replica with pg_basebackup (${c.replica.dir})`);
  rmSync(c.replica.dir, { recursive: true, force: true });
  // -R writes standby.signal and primary_conninfo; -C -S makes a physical slot so the primary keeps
  // the WAL the replica still needs.
  const slotExists = spawnSync(join(binDir, 'psql'), ['-h', '127.0.0.1', '-p', String(c.primary.port), '-U', 'postgres', '-tAc',
    `SELECT 1 FROM pg_replication_slots WHERE slot_name = '${REPLICA_SLOT}'`], { encoding: 'utf8' }).stdout?.trim() === '1';
  asServerUser(binDir, 'pg_basebackup', [
    '-h', '127.0.0.1', '-p', String(c.primary.port), '-U', 'postgres', '-D', c.replica.dir, '-R', '-X', 'stream',
    ...(slotExists ? ['-S', REPLICA_SLOT] : ['-C', '-S', REPLICA_SLOT]), '--checkpoint=fast',
  ], 'pg_basebackup');
  appendAsServerUser(join(c.replica.dir, 'postgresql.auto.conf'), `port = ${c.replica.port}\n`);
}

async function waitForStreaming(c: LocalCluster): Promise<void> {
  const deadline = Date.now() + 60_000;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const state = await withClient(urlFor(c.primary.port, 'postgres', 'postgres'), async (db) =>
        (await db.query<{ state: string }>('SELECT state FROM pg_stat_replication')).rows[0]?.state,
      );
      if (state === 'streaming') return;
      last = state ?? 'no replication connection yet';
    } catch (error) {
      last = (error as Error).message;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new LocalClusterError(`the replica is not streaming after 60 s (${last}); see ${join(c.replica.dir, 'server.log')}`);
}

/** Brings the primary and replica up, installing and initialising what is missing. Idempotent. */
export async function up(cluster: LocalCluster, say: Say): Promise<void> {
  const binDir = ensureServer(say);
  ensurePgvector(say);
  ensureDataDir(cluster, say);
  const c = localCluster(cluster.root);
  initPrimary(binDir, c, say);
  start(binDir, c.primary.dir, `primary on port ${c.primary.port}`, c.primary.port, say);
  await ensureRolesAndDatabase(c);
  initReplica(binDir, c, say);
  start(binDir, c.replica.dir, `replica on port ${c.replica.port}`, c.replica.port, say);
  await waitForStreaming(c);
}

export function down(c: LocalCluster, say: Say, options: { purge?: boolean } = {}): void {
  const binDir = findBinDir();
  if (binDir) {
    for (const [what, dir] of [['replica', c.replica.dir], ['primary', c.primary.dir]] as const) {
      if (!isRunning(binDir, dir)) continue;
      say(`stopping the ${what}`);
      asServerUser(binDir, 'pg_ctl', ['stop', '-w', '-m', 'fast', '-D', dir], `stopping the ${what}`);
    }
  }
  if (options.purge && existsSync(c.dataDir)) {
    say(`removing ${c.dataDir}`);
    const target = lstatSync(c.dataDir).isSymbolicLink() ? realpathSync(c.dataDir) : undefined;
    rmSync(c.dataDir, { recursive: true, force: true });
    if (target) rmSync(target, { recursive: true, force: true });
  }
}

export interface ServerStatus {
  role: 'primary' | 'replica';
  port: number;
  url: string;
  running: boolean;
  inRecovery?: boolean;
  replication?: { state: string; replayLagBytes: number; replayLagSeconds: number | null }[];
  receiving?: { status: string; replayDelaySeconds: number | null };
  error?: string;
}

export async function status(c: LocalCluster): Promise<ServerStatus[]> {
  const binDir = findBinDir();
  const out: ServerStatus[] = [];
  for (const role of ['primary', 'replica'] as const) {
    const server = c[role];
    const entry: ServerStatus = { role, port: server.port, url: urlFor(server.port), running: !!binDir && isRunning(binDir, server.dir) };
    if (entry.running) {
      try {
        await withClient(urlFor(server.port, 'postgres', 'postgres'), async (db) => {
          entry.inRecovery = (await db.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0]!.r;
          if (role === 'primary') {
            const { rows } = await db.query<{ state: string; lag_bytes: string; lag_s: number | null }>(`
              SELECT state, pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint::text AS lag_bytes,
                     extract(epoch FROM replay_lag)::float8 AS lag_s FROM pg_stat_replication`);
            entry.replication = rows.map((r) => ({ state: r.state, replayLagBytes: Number(r.lag_bytes), replayLagSeconds: r.lag_s }));
          } else {
            const { rows } = await db.query<{ status: string | null; delay: number | null }>(`
              SELECT (SELECT status FROM pg_stat_wal_receiver) AS status,
                     CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
                          ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 END AS delay`);
            entry.receiving = { status: rows[0]?.status ?? 'not connected', replayDelaySeconds: rows[0]?.delay ?? null };
          }
        });
      } catch (error) {
        entry.error = (error as Error).message;
      }
    }
    out.push(entry);
  }
  return out;
}
