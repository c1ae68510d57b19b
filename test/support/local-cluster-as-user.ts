/**
 * `db up` / `db down --purge` of the local cluster rooted at argv[3], for a test that runs this file
 * as another user: `db up`'s own code (`up`, `down`, `status`), in a process that is not root.
 * Prints one JSON line: the uid it ran as, and the servers' status after the step.
 */
import { down, localCluster, status, up } from '../../adapters/postgres/local-cluster.js';

const [step, root] = process.argv.slice(2);
if ((step !== 'up' && step !== 'down') || !root) {
  process.stderr.write('usage: local-cluster-as-user.js up|down <root>\n');
  process.exit(2);
}
const c = localCluster(root);
const say = (line: string) => process.stderr.write(`${line}\n`);
if (step === 'up') await up(c, say);
else down(c, say, { purge: true });
process.stdout.write(`${JSON.stringify({ uid: process.getuid?.(), servers: await status(c) })}\n`);
