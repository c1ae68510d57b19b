/**
 * The ceiling bench:launch prints beside its figures: the objects of N runs (the namespace, then its
 * objects together, then the Job: what the launcher sends, built by runObjects) created through
 * the worker's client and connections, as many runs at once as the launcher's default, against a
 * simulator of the same kind, with no database, no webhook and no event. What launching costs here at the least,
 * in a process of its own as `serve` is.
 *
 * node dist/bench/kube-ceiling.js <kubeconfig-file> <runs>; prints runs created per second on stdout.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { KubeConfig } from '@kubernetes/client-node';
import { reuseConnections } from '../adapters/kubernetes/connections.js';
import { ensureCreated } from '../adapters/kubernetes/launcher.js';
import { runObjects } from '../adapters/kubernetes/run-objects.js';
import { JsonObjectApi } from '../adapters/kubernetes/json-object-api.js';

const [kubeconfig, count] = process.argv.slice(2);
if (!kubeconfig || !count) throw new Error('usage: kube-ceiling <kubeconfig-file> <runs>');
const AT_ONCE = 16; // the launcher's default concurrency
const kc = new KubeConfig();
kc.loadFromString(readFileSync(kubeconfig, 'utf8'));
const close = reuseConnections(kc);
const kube = JsonObjectApi.fromConfig(kc);
const signal = new AbortController().signal;

async function launch(): Promise<void> {
  const { namespace, objects } = runObjects(
    {
      runId: randomUUID(), projectId: randomUUID(), agent: 'dev', issue: 1, image: 'codex-k8s-agent:bench', deadlineSeconds: 3600, ttlAfterFinishedSeconds: 86_400,
      quota: { cpu: '2', memory: '4Gi', pods: 4 }, egressPorts: [443],
      runner: { repository: 'octo/hello', subjectKind: 'issue', learningMode: false, githubApiUrl: 'https://api.github.com' },
    },
    { openaiKey: 'sk-bench', repositoryToken: 'bench-token' },
  );
  await ensureCreated(kube, namespace, signal);
  await Promise.all(objects.slice(0, -1).map((object) => ensureCreated(kube, object, signal)));
  await ensureCreated(kube, objects.at(-1)!, signal);
}

let next = 0;
const started = performance.now();
await Promise.all(Array.from({ length: AT_ONCE }, async () => {
  while (next < Number(count)) {
    next++;
    await launch();
  }
}));
process.stdout.write(`${(Number(count) / ((performance.now() - started) / 1000)).toFixed(1)}\n`);
await close();
