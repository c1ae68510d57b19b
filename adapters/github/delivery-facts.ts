import { createHash } from 'node:crypto';
import type { DeliveryFacts } from '../../domain/webhooks/trigger-policy.js';
import { isSubjectNumber } from '../../domain/shared/codec.js';

type Json = Record<string, unknown>;
const obj = (v: unknown): Json | undefined => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : undefined);
const str = (v: unknown): string | null => (typeof v === 'string' && v.length <= 1024 ? v : null);
const id = (v: unknown): number | null => (typeof v === 'number' && Number.isSafeInteger(v) && v > 0 ? v : null);

/**
 * The safe facts of a GitHub delivery that the trigger policy needs: never the whole payload, and
 * nothing of it beyond names and numbers. GitHub things are identified by their numeric ids. Anything missing or of the wrong shape is simply absent.
 */
export function deliveryFacts(event: string, payload: unknown): DeliveryFacts {
  const body = obj(payload) ?? {};
  const repository = obj(body.repository);
  const repositoryId = id(repository?.id);
  const owner = str(obj(repository?.owner)?.login);
  const name = str(repository?.name);
  const issue = obj(body.issue);
  const pull = obj(body.pull_request);
  const subjectJson = event === 'pull_request' ? pull : event === 'issues' ? issue : undefined;
  const number = isSubjectNumber(subjectJson?.number) ? subjectJson.number : null;
  const labels = Array.isArray(subjectJson?.labels) ? subjectJson.labels.map((l) => str(obj(l)?.name)).filter((l): l is string => l !== null) : [];
  const headRepositoryId = id(obj(obj(pull?.head)?.repo)?.id);
  const baseRepositoryId = id(obj(obj(pull?.base)?.repo)?.id);
  const sender = obj(body.sender);
  const login = str(sender?.login);
  const senderId = id(sender?.id);
  return {
    event,
    action: str(body.action),
    repository: repositoryId !== null && owner && name ? { id: repositoryId, owner, name } : null,
    subject: subjectJson && number !== null
      ? event === 'pull_request'
        ? { kind: 'pull_request', number, labels, fromFork: headRepositoryId === null || headRepositoryId !== (baseRepositoryId ?? repositoryId) }
        : { kind: 'issue', number, labels }
      : null,
    label: str(obj(body.label)?.name),
    // No type is not a User: only a person's label can start a run.
    sender: login && senderId !== null ? { id: senderId, login, type: str(sender?.type) } : null,
    labeledAt: str(subjectJson?.updated_at),
    // What the agent may run on: the body as it was labelled (checked again at checkout).
    bodySha256: typeof subjectJson?.body === 'string' ? createHash('sha256').update(subjectJson.body).digest('hex') : subjectJson ? createHash('sha256').update('').digest('hex') : null,
  };
}
