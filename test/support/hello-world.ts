import { randomBytes } from 'node:crypto';
import { githubDirectory } from '../../adapters/github/directory.js';
import { setupCommands } from '../../commands/setup.js';
import type { EventStore } from '../../ports/event-store.js';
import { startFakeGithub } from './fake-github.js';

/** The repository and the sender of @octokit/webhooks-examples, by the numeric ids their payloads carry. */
export const HELLO_WORLD = { id: 186853002, owner: 'Codertocat', name: 'Hello-World' };
export const CODERTOCAT = { id: 21031067, login: 'Codertocat' };

/**
 * A project `hello` with the examples' repository connected and their sender, Codertocat, a
 * read_write member, set up through the setup commands against a local fake of GitHub's API.
 */
export async function connectHelloWorld(store: Pick<EventStore, 'append' | 'readStreams' | 'readStream'>): Promise<void> {
  const github = await startFakeGithub();
  try {
    github.addRepository(HELLO_WORLD);
    github.addUser(CODERTOCAT);
    const directory = githubDirectory(github.url);
    const setup = setupCommands({ store, github: directory, providers: { github: directory }, emailHashKey: randomBytes(32), now: () => new Date().toISOString() });
    const meta = { correlationId: 'setup', actor: { type: 'system' as const, id: 'setup' } };
    await setup.allowUser({ email: 'codertocat@example.com', githubLogin: CODERTOCAT.login, platformRole: null }, meta);
    await setup.createProject({ key: 'hello', name: 'Hello' }, meta);
    await setup.addMember({ projectKey: 'hello', email: 'codertocat@example.com', role: 'read_write' }, meta);
    await setup.connectRepository({ projectKey: 'hello', provider: 'github', owner: HELLO_WORLD.owner, name: HELLO_WORLD.name, token: null }, () => '', meta);
  } finally {
    await github.close();
  }
}
