/**
 * Run by `npm test` before the test files: brings the local primary + replica up (installing
 * PostgreSQL and pgvector on a fresh machine), migrates a template database that every test file
 * copies, drops databases that earlier runs left behind, and fetches Debian's kubectl and ShellCheck.
 */
import { ensureDebianTool, KUBECTL, OWNER_ROLE, SHELLCHECK, up, urlFor } from '../../adapters/postgres/local-cluster.js';
import { projectRoot } from '../../adapters/paths.js';
import { migrate } from '../../adapters/postgres/migrate.js';
import { cluster, TEMPLATE_DATABASE, TEST_DATABASE_PREFIX, withAdmin } from './cluster.js';

const say = (line: string) => process.stderr.write(`test setup: ${line}\n`);
const started = Date.now();
await up(cluster, say);
await withAdmin(async (db) => {
  const { rows } = await db.query<{ datname: string }>(
    `SELECT datname FROM pg_database WHERE datname LIKE $1 OR datname = $2`,
    [`${TEST_DATABASE_PREFIX}%`, TEMPLATE_DATABASE],
  );
  for (const { datname } of rows) await db.query(`DROP DATABASE ${datname} WITH (FORCE)`);
  await db.query(`CREATE DATABASE ${TEMPLATE_DATABASE} OWNER ${OWNER_ROLE}`);
});
// Migrated as the owner, as production is; the tests run as the platform's role.
const result = await migrate(urlFor(cluster.primary.port, TEMPLATE_DATABASE, OWNER_ROLE));
say(`database ready in ${Date.now() - started} ms (migrations: ${result.applied.length})`);
// Debian's kubectl and ShellCheck, for the tests that run them; without one, those tests say so and skip.
for (const tool of [KUBECTL, SHELLCHECK]) {
  try {
    say(`${tool.package}: ${ensureDebianTool(projectRoot, tool, say)}`);
  } catch (error) {
    say(`${tool.package} could not be fetched (${(error as Error).message.slice(0, 200)}): the tests that run it will skip`);
  }
}
