import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findBinDir, type ServerStatus } from '../adapters/postgres/local-cluster.js';
import { projectRoot } from '../adapters/paths.js';

// Issue 11: with PostgreSQL installed (the test setup installed it as root), `db up` as a user
// without root runs the servers as that user: no runuser, no chown, a data folder of its own.
const USER = 'nobody';
const script = join(projectRoot, 'dist', 'test', 'support', 'local-cluster-as-user.js');
const isRoot = process.getuid?.() === 0;

/**
 * How to run a command as a user without root here: `runuser -u nobody` when that user can reach
 * this checkout's Node.js and build; otherwise (a checkout in a private folder) a user namespace,
 * where the process is uid 65534 too and no longer has root's privileges.
 */
function asUser(): { prefix: string[]; realUser: boolean } | undefined {
  if (!isRoot) return undefined;
  const reach = spawnSync('runuser', ['-u', USER, '--', process.execPath, '-e', `require('fs').accessSync(${JSON.stringify(script)})`], { cwd: '/' });
  if (reach.status === 0) return { prefix: ['runuser', '-u', USER, '--'], realUser: true };
  if (spawnSync('unshare', ['--user', '--', 'true']).status === 0) return { prefix: ['unshare', '--user', '--'], realUser: false };
  return undefined;
}

const how = asUser();
const cannot = !findBinDir() ? 'PostgreSQL is not installed' : !how ? 'needs root, and either a checkout the user nobody can read or user namespaces' : false;

describe('db up as a user without root', { skip: cannot }, () => {
  if (!how) return;
  const user = how;
  const root = mkdtempSync(join(tmpdir(), 'codexk8s-nonroot-'));
  if (user.realUser) chownSync(root, 65534, 65534);
  after(() => {
    run('down');
    rmSync(root, { recursive: true, force: true });
  });

  function run(step: 'up' | 'down'): { status: number | null; stderr: string; result?: { uid: number; servers: ServerStatus[] } } {
    const [cmd, ...args] = user.prefix;
    const r = spawnSync(cmd!, [...args, process.execPath, script, step, root], { cwd: '/', encoding: 'utf8', timeout: 120_000, env: { ...process.env, CODEXK8S_LOCAL_PG_PORT: '' } });
    const line = r.stdout.trim().split('\n').at(-1);
    return { status: r.status, stderr: r.stderr, result: line ? JSON.parse(line) : undefined };
  }

  const serverUid = (dir: string) => {
    const pid = readFileSync(join(dir, 'postmaster.pid'), 'utf8').split('\n')[0]!;
    return Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
  };

  it('brings up a streaming primary and replica, run as that user, in a data folder of its own', () => {
    const first = run('up');
    assert.equal(first.status, 0, first.stderr);
    assert.notEqual(first.result!.uid, 0);
    assert.match(first.stderr, /initialising the primary/);
    assert.doesNotMatch(first.stderr, /installing|postgres user cannot reach/);
    const [primary, replica] = first.result!.servers;
    assert.equal(primary!.running, true);
    assert.equal(primary!.replication?.[0]?.state, 'streaming');
    assert.equal(replica!.inRecovery, true);
    assert.equal(replica!.receiving?.status, 'streaming');
    const data = join(root, '.codexk8s', 'pg');
    for (const dir of ['primary', 'replica']) {
      assert.ok(existsSync(join(data, dir, 'PG_VERSION')));
      // The servers run as the user who ran `db up` (through runuser: nobody, uid 65534).
      if (user.realUser) assert.equal(serverUid(join(data, dir)), 65534);
    }
  });

  it('is idempotent: a second run starts nothing and initialises nothing', () => {
    const again = run('up');
    assert.equal(again.status, 0, again.stderr);
    assert.equal(again.stderr.trim(), '');
    assert.ok(again.result!.servers.every((s) => s.running));
  });

  it('down --purge stops both servers and removes the data', () => {
    const stopped = run('down');
    assert.equal(stopped.status, 0, stopped.stderr);
    assert.match(stopped.stderr, /stopping the replica[\s\S]*stopping the primary/);
    assert.ok(stopped.result!.servers.every((s) => !s.running));
    assert.equal(existsSync(join(root, '.codexk8s', 'pg')), false);
  });
});
