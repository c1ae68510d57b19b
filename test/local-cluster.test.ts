import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { down, localCluster, up } from '../adapters/postgres/local-cluster.js';

describe('the local PostgreSQL servers (db up)', () => {
  it('CODEXK8S_LOCAL_PG_PORT that is no port for two servers is refused, naming it (found by a review: some fell back to the default, some were used)', () => {
    const before = process.env.CODEXK8S_LOCAL_PG_PORT;
    try {
      for (const bad of ['abc', '0', '-5', '70000', '1.5', '65535', '80']) {
        process.env.CODEXK8S_LOCAL_PG_PORT = bad;
        assert.throws(() => localCluster(tmpdir()), (e: Error) => /^CODEXK8S_LOCAL_PG_PORT must be/.test(e.message), bad);
      }
      process.env.CODEXK8S_LOCAL_PG_PORT = ' 25000 ';
      assert.deepEqual([localCluster(tmpdir()).primary.port, localCluster(tmpdir()).replica.port], [25000, 25001]);
      process.env.CODEXK8S_LOCAL_PG_PORT = '';
      assert.ok(localCluster(tmpdir()).primary.port >= 20000, 'empty: the port derived from the path');
    } finally {
      if (before === undefined) delete process.env.CODEXK8S_LOCAL_PG_PORT;
      else process.env.CODEXK8S_LOCAL_PG_PORT = before;
    }
  });

  it('a port another process holds: the error says so, with what the server logged and the setting that chooses other ports', async () => {
    const root = mkdtempSync(join(tmpdir(), 'codexk8s-taken-'));
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    process.env.CODEXK8S_LOCAL_PG_PORT = String(port);
    const cluster = localCluster(root);
    try {
      assert.equal(cluster.primary.port, port);
      await assert.rejects(up(cluster, () => {}), (error: Error) => {
        assert.match(error.message, /Address already in use/, 'what the server logged');
        assert.match(error.message, new RegExp(`port ${port} is taken by another process`));
        assert.match(error.message, /CODEXK8S_LOCAL_PG_PORT/);
        return true;
      });
      // Freed, then failing for another reason: the error quotes this start's lines, not the last one's.
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
      writeFileSync(join(localCluster(root).primary.dir, 'postgresql.auto.conf'), 'shared_buffers = lots\n');
      await assert.rejects(up(localCluster(root), () => {}), (error: Error) => {
        assert.doesNotMatch(error.message, /listen socket|TCP\/IP|Address already in use|is taken/, 'nothing of the earlier start');
        assert.match(error.message, /postgresql\.auto\.conf" contains errors/);
        return true;
      });
    } finally {
      // Built again: db up may have moved the data where the postgres user can reach it, behind a link.
      down(localCluster(root), () => {}, { purge: true });
      delete process.env.CODEXK8S_LOCAL_PG_PORT;
      if (blocker.listening) blocker.close();
      rmSync(root, { recursive: true, force: true });
    }
  });
});
