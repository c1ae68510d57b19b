import { foldStream, type EventStore, type RecordedEvent } from '../../ports/event-store.js';
import type { DomainEvent } from '../../domain/events.js';
import { decideRun, runDecider, type RunCommand } from '../../domain/runs/run.js';
import { streamOf } from '../../domain/shared/streams.js';
import { handleCommand } from '../../commands/handle-command.js';
import { rememberedStates } from '../../commands/remembered-states.js';
import { endRun } from '../../commands/runs.js';
import { reactor } from '../reactors/reactor.js';
import { sleep } from '../../projections/lease.js';
import type { JsonObjectApi, ObjectJson } from './json-object-api.js';
import { stopJobUnlessEnded } from './cancel.js';
import { runObjects, type RunObjectsSpec } from './run-objects.js';

/** How often, and how long at most each time, a create that an overloaded API server shed (429) waits and is sent again. */
const SHED_RETRIES = 20;
const SHED_LONGEST_WAIT_S = 10;

/** The wait an API server asked for with Retry-After (seconds; 1 when it gave none, as its own default), capped. */
export function retryAfterMs(error: unknown): number {
  const header = (error as { headers?: Record<string, string> }).headers?.['retry-after'];
  const seconds = Number(header);
  return Math.min(Number.isFinite(seconds) && seconds > 0 ? seconds : 1, SHED_LONGEST_WAIT_S) * 1000;
}

/**
 * Creates an object. One that exists already is one a replayed reaction made before: go on. A create
 * the API server shed (429: its priority and fairness queues are full) is sent again after the wait
 * it asks for, without spending one of the launch's tries: a burst of launches is what fills them.
 */
export async function ensureCreated(kube: Pick<JsonObjectApi, 'createAsIs'>, object: ObjectJson, signal: AbortSignal): Promise<'created' | 'exists'> {
  for (let shed = 0; ; shed++) {
    try {
      await kube.createAsIs(object);
      return 'created';
    } catch (error) {
      const code = (error as { code?: number }).code;
      if (code === 409) return 'exists';
      if (code !== 429 || shed >= SHED_RETRIES || signal.aborted) throw error;
      await sleep(retryAfterMs(error), signal);
    }
  }
}

export interface LauncherDeps {
  kube: JsonObjectApi;
  store: Pick<EventStore, 'append' | 'readStreams' | 'readStream'>;
  now: () => string;
  objects: Omit<RunObjectsSpec, 'runId' | 'projectId' | 'agent' | 'issue'>;
  /** The OpenAI key the agent's container gets (CODEXK8S_OPENAI_API_KEY), as a mounted file. */
  openaiKey: string;
  /** The registry's pull credentials for a private agent image (a Docker config JSON), copied into each run's namespace. */
  imagePullSecret?: string | undefined;
  /** The repository's token, decrypted at launch; null when the repository has none. */
  repositoryToken: (projectId: string, repositoryId: string | undefined) => Promise<string | null>;
  /** GitHub's API for the runner's checkout and publish (CODEXK8S_GITHUB_API_URL). */
  githubApiUrl?: string;
  /** Launches at once (16). */
  concurrency?: number;
  /** Tries of the whole launch before the run fails with the reason. */
  attempts?: number;
  retryMs?: number;
}

const describe = (error: unknown) => {
  // An HTTP status is a number; a socket's error has a string code (ECONNREFUSED), and says it itself.
  const code = (error as { code?: unknown }).code;
  const message = error instanceof Error ? error.message.split('\n')[0]! : String(error);
  return (typeof code === 'number' ? `Kubernetes answered ${code}: ${message}` : message).slice(0, 500);
};

/**
 * On RunScheduled: creates the run's namespace and its objects but the Job (names derived from the
 * run id, so a replay finds "already exists" and goes on) and records RunNamespacePrepared; then
 * creates the Job and records JobStarted. A launch that keeps failing
 * is retried with backoff and, past the bound, fails the run with the reason (which releases its
 * slot). A run canceled while it was launching keeps no Job: the cancel makes StartJob a no-op, and
 * the launcher deletes the namespace it made (before the Job) or the Job if it still runs (after).
 */
export function runLauncher(deps: LauncherDeps) {
  const attempts = deps.attempts ?? 5;
  return reactor({
    name: 'kubernetes-launcher',
    handles: ['RunScheduled'],
    // Each run's launch is its own: many at once, so a burst of labels does not queue behind one another.
    concurrency: deps.concurrency ?? 16,
    async react(event, { meta, signal }) {
      if (event.type !== 'RunScheduled') return;
      const runId = event.data.runId;
      const stream = streamOf.run(runId);
      const events = await deps.store.readStream(stream);
      const requested = events.find((e): e is RecordedEvent<DomainEvent> & { type: 'RunRequested' } => e.type === 'RunRequested');
      const run = foldStream(events, runDecider);
      if (!requested || run.state.status !== 'scheduled') return; // started already, or ended meanwhile
      // The launch's two steps decide on the state just read, then on what each step wrote: no read
      // of their own. A stale state (a cancel meanwhile) fails the append's guard and is read again.
      const states = rememberedStates(deps.store);
      states.remember({ stream, ...run });
      const spec: RunObjectsSpec = {
        ...deps.objects, runId, projectId: requested.data.projectId, agent: requested.data.agent, issue: requested.data.subject.number,
        runner: {
          repository: requested.data.repository.replace(/^github\//, ''), subjectKind: requested.data.subject.kind, learningMode: requested.data.learningMode, githubApiUrl: deps.githubApiUrl ?? 'https://api.github.com',
          ...(requested.data.issueBodySha256 ? { issueBodySha256: requested.data.issueBodySha256 } : {}),
        },
      };
      let last = '';
      for (let attempt = 1; attempt <= attempts && !signal.aborted; attempt++) {
        try {
          const token = await deps.repositoryToken(requested.data.projectId, requested.data.repositoryId);
          const { names, namespace, objects } = runObjects(spec, { openaiKey: deps.openaiKey, repositoryToken: token, imagePullSecret: deps.imagePullSecret });
          await ensureCreated(deps.kube, namespace, signal);
          // The Job last: it must not start before its Secrets, quota and policy are there.
          const job = objects.at(-1)!;
          await Promise.all(objects.slice(0, -1).map((object) => ensureCreated(deps.kube, object, signal)));
          const step = (command: RunCommand) =>
            handleCommand({ store: deps.store, states }, meta, async (load) => {
              const [current] = await load([{ stream, fold: runDecider }], { remembered: true });
              return { writes: [{ stream: current.stream, events: decideRun(command, current.state) }], result: current.state.status };
            });
          const kinds = [namespace, ...objects.slice(0, -1)].map((o) => `${o.kind}/${o.metadata?.name}`);
          const prepared = await step({ type: 'PrepareNamespace', namespace: names.namespace, objects: kinds, now: deps.now() });
          if (prepared.result !== 'scheduled' && prepared.result !== 'running') {
            // Ended while it launched (a cancel raced the launch): no Job at all, and the namespace goes.
            await deps.kube.delete({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: names.namespace } }, undefined, undefined, undefined, undefined, 'Foreground').catch(() => {});
            return;
          }
          await ensureCreated(deps.kube, job, signal);
          const started = await step({ type: 'StartJob', namespace: names.namespace, job: names.job, now: deps.now() });
          if (!started.append && foldStream(await deps.store.readStream(stream), runDecider).state.status !== 'running') {
            // Ended between the two steps: no Job may keep running (a cancel's reaction may have come
            // before the Job did). One that ended on its own keeps its namespace and logs until the TTL.
            await stopJobUnlessEnded(deps.kube, runId);
          }
          return;
        } catch (error) {
          last = describe(error);
          if (attempt < attempts) await sleep((deps.retryMs ?? 500) * 2 ** (attempt - 1), signal);
        }
      }
      if (!signal.aborted) await endRun(deps, runId, { type: 'FailRun', reason: `launch failed: ${last}` }, meta);
    },
  });
}
