import { BatchV1Api, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import type pg from 'pg';
import type { EventStore } from '../../ports/event-store.js';
import type { Waker } from '../../ports/waker.js';
import { ConfigError, duration, githubConfig, integer, tokenKeysConfig, type RunsConfig } from '../config.js';
import { sleep } from '../../projections/lease.js';
import { namespaceRemover, reapNamespaces } from './reaper.js';
import { tokenCipher } from '../crypto/token-cipher.js';
import { repositoryTokens } from './repository-token.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../http/metrics.js';
import { runReactor } from '../reactors/runner.js';
import { runCanceler } from './cancel.js';
import { jobOutcomes } from './job-outcomes.js';
import { reuseConnections } from './connections.js';
import { runLauncher } from './launcher.js';
import { podResources } from './run-objects.js';
import { startKubeSimulator } from './simulator/index.js';
import { JsonObjectApi } from './json-object-api.js';
import { installationId } from '../postgres/installation.js';

type Env = Record<string, string | undefined>;

export interface KubernetesSettings {
  /** CODEXK8S_RUN_NAMESPACE_TTL: how long a finished run's namespace stays (24h; 0: at once). */
  namespaceTtlSeconds: number;
  agentImage: string;
  openaiKey: string | undefined;
  /** CODEXK8S_AGENT_IMAGE_PULL_SECRET: a Docker config JSON for a private agent image. */
  agentImagePullSecret: string | undefined;
  egressPorts: number[];
  quota: { cpu: string; memory: string; pods: number };
  /**
   * CODEXK8S_LAUNCH_CONCURRENCY: runs launched at once (16). Each launch creates its objects all at
   * once (about nine), so 16 keep about 144 requests in flight, under an API server's default limit
   * of 200 mutating requests (--max-mutating-requests-inflight).
   */
  launchConcurrency: number;
  /** KUBECONFIG, or the in-cluster config; undefined: none, and the simulator runs in process. */
  cluster: KubeConfig | undefined;
  /** CODEXK8S_TOKEN_ENCRYPTION_KEYS, which decrypt repository tokens at launch. */
  tokenKeys: ReturnType<typeof tokenCipher> | undefined;
  githubApiUrl: string;
}

/** Every setting of the Kubernetes side, read and checked before anything starts (a bad one refuses the start). */
export function kubernetesSettings(env: Env = process.env): KubernetesSettings {
  const ports = (env.CODEXK8S_RUN_EGRESS_PORTS?.trim() || '443').split(',').map((p) => p.trim()).filter(Boolean);
  if (ports.length === 0 || ports.some((p) => !/^\d{1,5}$/.test(p) || Number(p) < 1 || Number(p) > 65535)) throw new ConfigError('CODEXK8S_RUN_EGRESS_PORTS must be comma-separated TCP ports');
  const quota = { cpu: env.CODEXK8S_RUN_QUOTA_CPU?.trim() || '2', memory: env.CODEXK8S_RUN_QUOTA_MEMORY?.trim() || '4Gi', pods: integer(env, 'CODEXK8S_RUN_QUOTA_PODS', 3, 1, 100) };
  try {
    podResources(quota); // a quota the pod cannot fit in would fail every run; refused at start instead
  } catch (error) {
    throw new ConfigError((error as Error).message);
  }
  const cluster = realCluster(env);
  const tokenKeys = tokenKeysConfig(env);
  const openaiKey = env.CODEXK8S_OPENAI_API_KEY?.trim() || undefined;
  if (cluster && !openaiKey) throw new ConfigError('CODEXK8S_OPENAI_API_KEY is not set (the agent needs it on a real cluster)');
  return {
    namespaceTtlSeconds: duration(env, 'CODEXK8S_RUN_NAMESPACE_TTL', 24 * 3600),
    agentImage: env.CODEXK8S_AGENT_IMAGE?.trim() || 'codex-k8s-agent:latest',
    openaiKey,
    agentImagePullSecret: dockerConfig(env.CODEXK8S_AGENT_IMAGE_PULL_SECRET),
    egressPorts: ports.map(Number),
    quota,
    launchConcurrency: integer(env, 'CODEXK8S_LAUNCH_CONCURRENCY', 16, 1, 256),
    cluster,
    tokenKeys: tokenKeys ? tokenCipher(tokenKeys) : undefined,
    githubApiUrl: githubConfig(env).apiUrl,
  };
}

/** A Docker config JSON, checked here so a bad one fails at start and not at every launch (its value is never echoed). */
function dockerConfig(value: string | undefined): string | undefined {
  if (!value?.trim()) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    parsed = undefined;
  }
  const auths = (parsed as { auths?: unknown } | undefined)?.auths;
  if (typeof auths !== 'object' || auths === null || Array.isArray(auths)) throw new ConfigError('CODEXK8S_AGENT_IMAGE_PULL_SECRET must be a Docker config JSON ({"auths": {...}})');
  return value.trim();
}

/** KUBECONFIG, or the in-cluster config: a real cluster. Neither: none (the caller may simulate one). */
function realCluster(env: Env): KubeConfig | undefined {
  if (!env.KUBECONFIG && !env.KUBERNETES_SERVICE_HOST) return undefined;
  const kc = new KubeConfig();
  try {
    kc.loadFromDefault();
  } catch (error) {
    throw new ConfigError(`${env.KUBECONFIG ? 'KUBECONFIG' : 'the in-cluster config'} cannot be loaded: ${(error as Error).message.split('\n')[0]}`);
  }
  if (!kc.getCurrentCluster()) throw new ConfigError(`${env.KUBECONFIG ? 'KUBECONFIG' : 'the in-cluster config'} names no cluster`);
  return kc;
}

/**
 * The Kubernetes side of the worker: the launcher and the canceler (reactors) and the outcome watch,
 * against the cluster KUBECONFIG (or the in-cluster config) names. With neither, it starts the
 * simulator in this process (every Job succeeds) and says so loudly: that is for trying the platform
 * out, never a production path.
 */
export async function startKubernetesWorker(deps: {
  store: Pick<EventStore, 'append' | 'readStreams' | 'readStream' | 'readAllRaw' | 'decode'>;
  pool: pg.Pool;
  waker: Waker;
  signal: AbortSignal;
  log: Logger;
  runs: RunsConfig;
  metrics?: Pick<Metrics, 'watchLastEvent' | 'namespacesCleaned'>;
  settings: KubernetesSettings;
}): Promise<{ tasks: Promise<void>[]; reactors: string[] }> {
  const { settings } = deps;
  let kc = settings.cluster;
  const tasks: Promise<void>[] = [];
  if (!kc) {
    const sim = await startKubeSimulator({ outcome: 'succeed' });
    kc = new KubeConfig();
    kc.loadFromString(sim.kubeconfig());
    deps.log.warn({ url: sim.url }, 'NO KUBERNETES CLUSTER: neither KUBECONFIG nor an in-cluster config is set, so runs go to the built-in simulator, where every Job succeeds. Set KUBECONFIG to run agents on a real cluster.');
    tasks.push(new Promise<void>((resolve) => deps.signal.addEventListener('abort', () => void sim.close().then(resolve), { once: true })));
  }
  const now = () => new Date().toISOString();
  // Labelled on every object of this installation's runs: the cleanup leaves the others' alone.
  const installation = await installationId(deps.pool);
  const closeConnections = reuseConnections(kc);
  const kube = JsonObjectApi.fromConfig(kc);
  const repositoryToken = repositoryTokens(deps.store, settings.tokenKeys);
  const common = { pool: deps.pool, store: deps.store, waker: deps.waker, signal: deps.signal, log: deps.log };
  const launcher = runLauncher({
    kube, store: deps.store, now, concurrency: settings.launchConcurrency, openaiKey: settings.openaiKey ?? 'simulated', imagePullSecret: settings.agentImagePullSecret, repositoryToken, githubApiUrl: settings.githubApiUrl,
    objects: { installation, image: settings.agentImage, deadlineSeconds: deps.runs.runDeadlineSeconds, ttlAfterFinishedSeconds: 24 * 3600, quota: settings.quota, egressPorts: settings.egressPorts },
  });
  const canceler = runCanceler(kube);
  const outcomes = jobOutcomes({
    store: deps.store, now, pool: deps.pool, kubeconfig: kc, batch: kc.makeApiClient(BatchV1Api), core: kc.makeApiClient(CoreV1Api), log: deps.log,
    meta: { correlationId: 'kubernetes-outcomes', actor: { type: 'system', id: 'kubernetes-outcomes' } }, stuckGraceMs: 5 * 60_000,
    deadlineMs: (deps.runs.runDeadlineSeconds + 300) * 1000,
    leaseMs: deps.runs.slotLeaseSeconds * 1000,
    onWatchEvent: (at) => deps.metrics?.watchLastEvent.set(at / 1000),
    secrets: settings.openaiKey ? [settings.openaiKey] : [],
  });
  const remover = settings.namespaceTtlSeconds === 0 ? namespaceRemover(kc.makeApiClient(CoreV1Api), () => deps.metrics?.namespacesCleaned.inc({ reason: 'expired' })) : undefined;
  tasks.push(runReactor(launcher, common), runReactor(canceler, common), outcomes.watch(deps.signal), reapEvery(60_000));
  if (remover) tasks.push(runReactor(remover, common));
  /** The cleanup, once a minute (deleting a namespace twice is harmless, so every worker may run it). */
  async function reapEvery(ms: number): Promise<void> {
    const core = kc!.makeApiClient(CoreV1Api);
    while (!deps.signal.aborted) {
      try {
        const counts = await reapNamespaces({ core, store: deps.store, now: Date.now, ttlMs: settings.namespaceTtlSeconds * 1000, orphanGraceMs: 3_600_000, installation });
        deps.metrics?.namespacesCleaned.inc({ reason: 'expired' }, counts.deleted);
        deps.metrics?.namespacesCleaned.inc({ reason: 'orphan' }, counts.orphans);
        if (counts.deleted + counts.orphans > 0) deps.log.info({ ...counts }, 'run namespaces cleaned up');
      } catch (error) {
        deps.log.warn({ err: error }, 'namespace cleanup failed; trying again later');
      }
      await sleep(ms, deps.signal);
    }
  }
  const running = [...tasks];
  tasks.push(Promise.allSettled(running).then(closeConnections));
  return { tasks, reactors: [launcher.name, canceler.name, 'kubernetes-outcomes', ...(remover ? [remover.name] : [])] };
}
