import type { EventMeta } from '../ports/event-store.js';
import { projectDecider, type Project } from '../domain/projects/project.js';
import { decideAll } from '../domain/shared/decider.js';
import { streamOf } from '../domain/shared/streams.js';
import { handleCommand, type HandlerDeps } from './handle-command.js';

/** Seals a token again under the current key; the plaintext exists only inside this call. */
export type Reencrypt = (tokenCiphertext: string, repositoryId: string) => string;

/**
 * `keys rotate` for one project: every repository token its stream holds, sealed again under the
 * current key, decided on the stream and appended at the version read. Someone writing the stream
 * meanwhile is a conflict the handler settles by reading and deciding again; a token under the
 * current key already is no event, so a rerun after an interruption finishes only the rest.
 */
export async function reencryptProjectTokens(
  deps: HandlerDeps,
  projectId: string,
  reencrypt: Reencrypt,
  meta: EventMeta,
): Promise<{ repositories: number; reencrypted: number }> {
  const { result } = await handleCommand(deps, meta, async (load) => {
    const [project] = await load<[Project]>([{ stream: streamOf.project(projectId), fold: projectDecider }]);
    const sealed = project.state.status === 'active' ? project.state.repositories.filter((r) => r.tokenCiphertext !== null) : [];
    // Every token is sealed again, and the decider keeps only those that were under another key.
    const commands = sealed.map((r) => ({ type: 'ReencryptRepositoryToken' as const, repositoryId: r.id, tokenCiphertext: reencrypt(r.tokenCiphertext!, r.id) }));
    const events = decideAll(projectDecider, commands, project.state);
    return { writes: [{ stream: project.stream, events }], result: { repositories: sealed.length, reencrypted: events.length } };
  });
  return result;
}
