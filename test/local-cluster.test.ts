import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { down, localCluster, up } from '../adapters/postgres/local-cluster.js';

describe('the local PostgreSQL servers (db up)', () => {
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
    } finally {
      down(cluster, () => {}, { purge: true });
      delete process.env.CODEXK8S_LOCAL_PG_PORT;
      blocker.close();
      rmSync(root, { recursive: true, force: true });
    }
  });
});
