import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createEventStore, type PostgresEventStore } from '../adapters/postgres/event-store.js';
import { parseKeyRing } from '../adapters/crypto/keys.js';
import { tokenCipher, TokenCipherError } from '../adapters/crypto/token-cipher.js';
import { repositoryTokens } from '../adapters/kubernetes/repository-token.js';
import { reencryptProjectTokens } from '../commands/reencrypt-tokens.js';
import { decideProject, projectDecider } from '../domain/projects/project.js';
import { foldStream } from '../domain/shared/decider.js';
import { streamOf } from '../domain/shared/streams.js';
import { projectionNamed } from '../projections/index.js';
import { rebuild } from '../projections/rebuild.js';
import { useTestDatabase, type TestDatabase } from './support/cluster.js';
import { runCli, type CliResult } from './support/cli.js';
import { systemMeta } from './support/events.js';
import { startFakeGithub, type FakeGithub } from './support/fake-github.js';

let db: TestDatabase;
useTestDatabase((created) => (db = created));
let github: FakeGithub;
let store: PostgresEventStore;

const key = (id: string) => `${id}:${randomBytes(32).toString('base64')}`;
const [A, B, C, D] = ['a', 'b', 'c', 'd'].map(key) as [string, string, string, string];
const cipherOf = (keys: string) => tokenCipher(parseKeyRing('CODEXK8S_TOKEN_ENCRYPTION_KEYS', keys, { exactBytes: 32 }));
const token = () => `ghp_${randomBytes(18).toString('hex')}`;
const tokens = { hello: token(), other: token(), third: token(), gone: token(), fresh: token() };
const emailHashKey = key('e');
const outputs: CliResult[] = [];
const cli = async (keys: string | undefined, ...args: string[]) => {
  const result = await runCli(args, {
    ...db.env, CODEXK8S_GITHUB_API_URL: github.url, CODEXK8S_EMAIL_HASH_KEY: emailHashKey, CODEXK8S_TOKEN_ENCRYPTION_KEYS: keys,
    ...Object.fromEntries(Object.entries(tokens).map(([name, t]) => [`TOKEN_${name.toUpperCase()}`, t])),
  });
  outputs.push(result);
  return result;
};
const json = (result: CliResult) => {
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout) as unknown;
};
const catchUp = () => rebuild(projectionNamed('repositories')!, { pool: db.ownerPool, store });

const projects: Record<string, string> = {};
/** Repository ids with their project and original token. */
const sealed: { projectId: string; repositoryId: string; token: string }[] = [];

describe('keys rotate', () => {
  before(async () => {
    store = createEventStore(db.pools.primary);
    github = await startFakeGithub();
    for (const [id, name] of [[6001, 'hello'], [6002, 'other'], [6003, 'third'], [6004, 'gone'], [6006, 'fresh']] as const) github.addRepository({ id, owner: 'octo', name, token: tokens[name] });
    github.addRepository({ id: 6005, owner: 'octo', name: 'public' });
    for (const p of ['alpha', 'beta', 'gamma']) projects[p] = (json(await cli(A, 'projects', 'create', p, '--json')) as { project_id: string }).project_id;
    // All under key A: alpha has two tokens (and one more, disconnected), beta one, gamma a public repository without one.
    for (const [project, name] of [['alpha', 'hello'], ['alpha', 'other'], ['beta', 'third'], ['alpha', 'gone']] as const) {
      const connected = json(await cli(A, 'projects', 'add-repo', project, 'github', `octo/${name}`, '--token-env', `TOKEN_${name.toUpperCase()}`, '--json')) as { repository_id: string };
      if (name !== 'gone') sealed.push({ projectId: projects[project]!, repositoryId: connected.repository_id, token: tokens[name] });
      else {
        const stream = streamOf.project(projects.alpha!);
        const { state, version } = foldStream(await store.readStream(stream), projectDecider);
        await store.append([{ stream, expected: version, events: decideProject({ type: 'DisconnectRepository', repositoryId: connected.repository_id }, state) }], systemMeta());
      }
    }
    json(await cli(A, 'projects', 'add-repo', 'gamma', 'github', 'octo/public', '--json'));
    await catchUp();
  });
  after(() => github.close());

  it('re-encrypts every token under the first key; a rerun finds nothing left; the old key can then go', async () => {
    assert.deepEqual(json(await cli(`${B},${A}`, 'keys', 'rotate', '--json')), { repositories: 3, reencrypted: 3, already_current: 0 });
    // The read model has not caught up: the streams are read, and decide that nothing is left.
    assert.deepEqual(json(await cli(`${B},${A}`, 'keys', 'rotate', '--json')), { repositories: 3, reencrypted: 0, already_current: 3 });
    await catchUp();
    const { rows } = await db.pools.primary.query('SELECT name, token_key_id FROM repositories ORDER BY name');
    assert.deepEqual(rows, [{ name: 'hello', token_key_id: 'b' }, { name: 'other', token_key_id: 'b' }, { name: 'public', token_key_id: null }, { name: 'third', token_key_id: 'b' }]);

    const onlyB = await cli(B, 'keys', 'rotate');
    assert.equal(onlyB.code, 0, onlyB.stderr);
    assert.equal(onlyB.stderr, 'codex-k8s: nothing left to re-encrypt: all 3 repository tokens are under key b\n');
    assert.equal(onlyB.stdout, '');
    // What a launch decrypts: with key A gone every token still comes back, and the first ciphertexts are no longer used.
    const launchWithB = repositoryTokens(store, cipherOf(B));
    for (const s of sealed) assert.equal(await launchWithB(s.projectId, s.repositoryId), s.token);
    await assert.rejects(repositoryTokens(store, cipherOf(A))(sealed[0]!.projectId, sealed[0]!.repositoryId), TokenCipherError);
  });

  it('an interrupted run is finished by the next one, and a concurrent write is read again', async () => {
    // Interrupted after alpha: only its tokens are under key C.
    assert.deepEqual(await reencryptProjectTokens({ store }, projects.alpha!, cipherOf(`${C},${B}`).reencrypt, systemMeta()), { repositories: 2, reencrypted: 2 });
    assert.deepEqual(json(await cli(`${C},${B}`, 'keys', 'rotate', '--json')), { repositories: 3, reencrypted: 1, already_current: 2 });

    // Someone writes alpha's stream between the rotation's read and its append.
    let reads = 0;
    const racing = {
      ...store,
      append: store.append.bind(store),
      readStreams: async (streams: readonly string[]) => {
        const read = await store.readStreams(streams);
        if (reads++ === 0) {
          const stream = streamOf.project(projects.alpha!);
          await store.append([{ stream, expected: read.get(stream)!.at(-1)!.streamPosition, events: [{ type: 'ProjectSlotsSet', data: { projectId: projects.alpha!, slots: 2 } }] }], systemMeta());
        }
        return read;
      },
    };
    assert.deepEqual(await reencryptProjectTokens({ store: racing }, projects.alpha!, cipherOf(`${D},${C}`).reencrypt, systemMeta()), { repositories: 2, reencrypted: 2 });
    assert.equal(reads, 2, 'decided again on the stream as it is now');
    const tail = (await store.readStream(streamOf.project(projects.alpha!))).slice(-3);
    assert.deepEqual(tail.map((e) => [e.type, e.type === 'RepositoryTokenReencrypted' ? e.data.tokenCiphertext.split('.')[0] : null]), [
      ['ProjectSlotsSet', null], ['RepositoryTokenReencrypted', 'd'], ['RepositoryTokenReencrypted', 'd'],
    ]);
  });

  it('a token the read model has not seen yet is rotated too (the projects are taken from the log)', async () => {
    // A new project's token, sealed under key C a moment ago; the repositories model last saw every token under B.
    json(await cli(C, 'projects', 'create', 'delta', '--json'));
    json(await cli(C, 'projects', 'add-repo', 'delta', 'github', 'octo/fresh', '--token-env', 'TOKEN_FRESH', '--json'));
    // Alpha is under D already; beta and delta are under C.
    assert.deepEqual(json(await cli(`${D},${C}`, 'keys', 'rotate', '--json')), { repositories: 4, reencrypted: 2, already_current: 2 });
  });

  it('refuses bad input with one line, and never shows or records a token', async () => {
    const cases: [string | undefined, string[], RegExp][] = [
      [undefined, [], /CODEXK8S_TOKEN_ENCRYPTION_KEYS is not set/],
      ['b', [], /CODEXK8S_TOKEN_ENCRYPTION_KEYS: each entry is kid:base64/],
      ['b:c2hvcnQ=', [], /key b must be exactly 32 bytes/],
      [`${B},${B}`, [], /key id b appears twice/],
      [B, ['--force'], /unknown option '--force'/],
      // Alpha's tokens are under key D now, which this list lacks: the rotation stops and says which key to keep.
      [`${C},${B}`, [], /its token is sealed under key d, which does not decrypt it here; keep every old key/],
    ];
    for (const [keys, args, message] of cases) {
      const result = await cli(keys, 'keys', 'rotate', ...args);
      assert.equal(result.code, 1, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, message);
      assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
    }
    for (const t of Object.values(tokens)) {
      const logged = await db.pools.primary.query('SELECT count(*)::int AS n FROM flow_events WHERE payload::text LIKE $1 OR metadata::text LIKE $1', [`%${t}%`]);
      assert.equal(logged.rows[0].n, 0);
      for (const r of outputs) assert.ok(!r.stdout.includes(t) && !r.stderr.includes(t));
    }
  });
});
