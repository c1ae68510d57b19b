import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { quantity, runObjects, type RunObjectsSpec } from '../adapters/kubernetes/run-objects.js';
import { failureOfPods, resultOfPods } from '../adapters/kubernetes/job-outcomes.js';
import { kubernetesSettings } from '../adapters/kubernetes/worker.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../adapters/paths.js';
import { runObjectsExample } from './support/run-objects-example.js';

const spec = (over: Partial<RunObjectsSpec> = {}): RunObjectsSpec => ({
  runId: randomUUID(), projectId: randomUUID(), agent: 'dev', issue: 42, image: 'ghcr.example/codex-k8s/agent:1', deadlineSeconds: 3600,
  ttlAfterFinishedSeconds: 86_400, quota: { cpu: '2', memory: '4Gi', pods: 3 }, egressPorts: [443], ...over,
});
const secrets = { openaiKey: `sk-${randomUUID()}`, repositoryToken: `ghp_${randomUUID().replace(/-/g, '')}` };
// Plain manifests, walked as JSON.
type Json = Record<string, any>;

describe('the objects of a run', () => {
  const built = runObjects(spec({ runner: { repository: 'octo/hello', subjectKind: 'pull_request', issueBodySha256: 'a'.repeat(64), learningMode: true, githubApiUrl: 'https://api.github.com' } }), secrets);
  const all = [built.namespace, ...built.objects].map((o) => JSON.parse(JSON.stringify(o)) as Json);
  const byKind = (kind: string) => all.filter((o) => o.kind === kind);
  const job = byKind('Job')[0]!;
  const pod = job.spec.template.spec;

  it('are shown, each, in the README as the launcher makes them', () => {
    assert.ok(readFileSync(join(projectRoot, 'README.md'), 'utf8').includes(`\`\`\`yaml\n${runObjectsExample()}\n\`\`\``), 'README.md holds the output of runObjectsExample()');
  });

  it('validate against the Kubernetes schemas, with names a DNS label allows', () => {
    assert.deepEqual(all.map((o) => o.kind), ['Namespace', 'ServiceAccount', 'Role', 'RoleBinding', 'ResourceQuota', 'LimitRange', 'NetworkPolicy', 'Secret', 'Secret', 'Job']);
    for (const o of all) assert.match(o.metadata.name, /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/);
    assert.throws(() => runObjects(spec({ deadlineSeconds: 'soon' as never }), secrets), 'a value the API server refuses is refused here');
  });

  it('are labelled with the run, project, issue, agent and manager; the namespace enforces Pod Security restricted', () => {
    for (const o of all) assert.equal(o.metadata.labels['app.kubernetes.io/managed-by'], 'codex-k8s');
    assert.equal(built.namespace.metadata!.labels!['pod-security.kubernetes.io/enforce'], 'restricted');
    assert.equal(built.namespace.metadata!.labels!['codex-k8s.io/issue'], '42');
    // With the installation's id (the worker always gives it), every object carries it too.
    const installation = randomUUID();
    const labelled = runObjects(spec({ installation }), secrets);
    for (const o of [labelled.namespace, ...labelled.objects]) assert.equal(o.metadata!.labels!['codex-k8s.io/installation'], installation);
  });

  it('grant no wildcard and no token: the role reads its own pods only, the ServiceAccount mounts no token', () => {
    for (const rule of byKind('Role')[0]!.rules) for (const list of [rule.apiGroups, rule.resources, rule.verbs]) assert.ok(!list.includes('*'));
    assert.equal(byKind('ServiceAccount')[0]!.automountServiceAccountToken, false);
    assert.equal(pod.automountServiceAccountToken, false);
  });

  it('deny all ingress and all egress but DNS and the allow-list', () => {
    const policy = byKind('NetworkPolicy')[0]!.spec;
    assert.deepEqual(policy.policyTypes, ['Ingress', 'Egress']);
    assert.deepEqual(policy.ingress, []);
    assert.deepEqual(policy.egress.flatMap((r: Json) => r.ports.map((p: Json) => `${p.protocol}/${p.port}`)), ['UDP/53', 'TCP/53', 'TCP/443']);
  });

  it('run the Job once, with a deadline and a TTL, non-root, no privilege escalation, no capabilities, RuntimeDefault seccomp, read-only root', () => {
    assert.deepEqual([job.spec.backoffLimit, job.spec.activeDeadlineSeconds, job.spec.ttlSecondsAfterFinished], [0, 3600, 86_400]);
    for (const c of [...pod.initContainers, ...pod.containers]) {
      assert.deepEqual([c.securityContext.runAsNonRoot, c.securityContext.allowPrivilegeEscalation, c.securityContext.readOnlyRootFilesystem], [true, false, true], c.name);
      assert.deepEqual(c.securityContext.capabilities.drop, ['ALL']);
      assert.equal(c.securityContext.seccompProfile.type, 'RuntimeDefault');
    }
  });

  it('mount the Secrets as files: the OpenAI key only in the agent, the repository token only in checkout and publish, never a literal in the Job', () => {
    const mounts = (name: string) => [...pod.initContainers, ...pod.containers].find((c: Json) => c.name === name).volumeMounts.map((m: Json) => m.name);
    assert.ok(mounts('agent').includes('openai') && !mounts('agent').includes('repository'), 'the agent never sees a GitHub token');
    assert.ok(mounts('checkout').includes('repository') && mounts('publish').includes('repository'));
    assert.ok(!mounts('checkout').includes('openai') && !mounts('publish').includes('openai'));
    const publish = pod.containers.find((c: Json) => c.name === 'publish');
    assert.notEqual(publish.securityContext.runAsUser, pod.containers.find((c: Json) => c.name === 'agent').securityContext.runAsUser, 'publish runs as another user');
    const env = Object.fromEntries(pod.containers[0].env.map((e: Json) => [e.name, e.value]));
    assert.deepEqual([env.CODEXK8S_ISSUE_NUMBER, env.CODEXK8S_REPOSITORY, env.CODEXK8S_SUBJECT_KIND, env.CODEXK8S_AGENT, env.CODEXK8S_ISSUE_BODY_SHA256, env.CODEXK8S_LEARNING_MODE], ['42', 'octo/hello', 'pull_request', 'dev', 'a'.repeat(64), 'true'], 'what the runner needs, no secret');
    const jobText = JSON.stringify(job);
    assert.ok(!jobText.includes(secrets.openaiKey) && !jobText.includes(secrets.repositoryToken));
  });

  it('share nothing writable from the agent with a container that holds the token but the workspace, which publish only reads', () => {
    const containers = [...pod.initContainers, ...pod.containers] as Json[];
    const mountsOf = (name: string) => containers.find((c) => c.name === name)!.volumeMounts as Json[];
    const agentVolumes = new Set(mountsOf('agent').map((m) => m.name));
    for (const holder of ['checkout', 'publish']) {
      const shared = mountsOf(holder).filter((m) => agentVolumes.has(m.name)).map((m) => m.name);
      assert.deepEqual(shared, ['workspace'], `${holder} shares only the workspace with the agent`);
    }
    assert.equal(mountsOf('publish').find((m) => m.name === 'workspace')!.readOnly, true);
    // Each container's /tmp (its HOME) is a volume, as the read-only root needs.
    for (const c of containers) assert.ok((c.volumeMounts as Json[]).some((m) => m.mountPath === '/tmp'), c.name);
    const agent = containers.find((c) => c.name === 'agent')!;
    const codexHome = (agent.env as Json[]).find((e) => e.name === 'CODEX_HOME')!.value as string;
    assert.ok(!codexHome.startsWith('/tmp'), 'codex puts no helper under /tmp');
    assert.ok((agent.volumeMounts as Json[]).some((m) => m.mountPath === codexHome), 'codex\'s home is writable');
  });
});

describe('a private agent image', () => {
  const pullSecret = JSON.stringify({ auths: { 'registry.example': { auth: Buffer.from(`bot:${randomUUID()}`).toString('base64') } } });
  const plain = (o: object) => JSON.parse(JSON.stringify(o)) as Json;

  it('gets the registry\'s credentials as a pull secret in the run\'s own namespace, named by the Job, never a literal in it', () => {
    const built = runObjects(spec(), { ...secrets, imagePullSecret: pullSecret });
    const registry = built.objects.map(plain).find((o) => o.kind === 'Secret' && o.type === 'kubernetes.io/dockerconfigjson')!;
    assert.equal(registry.metadata.namespace, built.names.namespace);
    assert.equal(registry.stringData['.dockerconfigjson'], pullSecret);
    const job = plain(built.objects.at(-1)!);
    assert.deepEqual(job.spec.template.spec.imagePullSecrets, [{ name: registry.metadata.name }]);
    assert.ok(!JSON.stringify(job).includes(pullSecret));
  });

  it('is pulled without one when none is configured', () => {
    const built = runObjects(spec(), secrets).objects.map(plain);
    assert.equal(built.filter((o) => o.type === 'kubernetes.io/dockerconfigjson').length, 0);
    assert.equal(built.at(-1)!.spec.template.spec.imagePullSecrets, undefined);
  });

  it('cuts the containers\' resources from the run\'s quota, so the pod fits in it whatever quota the settings take', () => {
    for (const [cpu, memory] of [['2', '4Gi'], ['500m', '1.5Gi'], ['200m', '512Mi'], ['16', '64Gi'], ['1.5', '3000M']] as const) {
      const built = runObjects(spec({ quota: { cpu, memory, pods: 1 } }), secrets);
      const pod = (JSON.parse(JSON.stringify(built.objects.at(-1))) as Json).spec.template.spec;
      const sum = (containers: Json[], kind: 'limits' | 'requests', resource: 'cpu' | 'memory') => containers.reduce((total, c) => total + quantity(c.resources[kind][resource])!, 0);
      for (const kind of ['limits', 'requests'] as const) {
        // The quota counts the running containers together, and an init container on its own.
        assert.ok(sum(pod.containers, kind, 'cpu') <= quantity(cpu)! + 1e-9, `${cpu}: ${kind}.cpu of the containers`);
        assert.ok(sum(pod.containers, kind, 'memory') <= quantity(memory)!, `${memory}: ${kind}.memory of the containers`);
        assert.ok(sum(pod.initContainers, kind, 'cpu') <= quantity(cpu)! + 1e-9 && sum(pod.initContainers, kind, 'memory') <= quantity(memory)!, `${cpu}/${memory}: checkout`);
      }
      const agent = pod.containers.find((c: Json) => c.name === 'agent');
      assert.ok(quantity(agent.resources.limits.memory)! >= quantity(memory)! / 2, 'the agent gets most of it');
    }
  });

  it('refuses a quota the pod cannot fit in, or that is no quantity, at start and naming the setting', () => {
    for (const [name, value] of [['CPU', 'lots'], ['CPU', '0'], ['CPU', '-1'], ['CPU', '100m'], ['CPU', '2 cores'], ['MEMORY', 'big'], ['MEMORY', '256Mi'], ['MEMORY', '0.4Gi']]) {
      assert.throws(() => kubernetesSettings({ [`CODEXK8S_RUN_QUOTA_${name}`]: value }), (e: Error) => e.name === 'ConfigError' && e.message.startsWith(`CODEXK8S_RUN_QUOTA_${name} must be a Kubernetes quantity of at least`), `${name}=${value}`);
    }
    assert.deepEqual(kubernetesSettings({ CODEXK8S_RUN_QUOTA_CPU: '750m', CODEXK8S_RUN_QUOTA_MEMORY: '1.5Gi' }).quota, { cpu: '750m', memory: '1.5Gi', pods: 3 });
  });

  it('launches 16 runs at once unless CODEXK8S_LAUNCH_CONCURRENCY says otherwise (1 to 256)', () => {
    assert.deepEqual(kubernetesSettings({ CODEXK8S_RUN_EGRESS_PORTS: '443, 8443,' }).egressPorts, [443, 8443], 'a trailing comma, as every other list setting takes it');
    assert.equal(kubernetesSettings({}).launchConcurrency, 16);
    assert.equal(kubernetesSettings({ CODEXK8S_LAUNCH_CONCURRENCY: '1' }).launchConcurrency, 1);
    assert.equal(kubernetesSettings({ CODEXK8S_LAUNCH_CONCURRENCY: '256' }).launchConcurrency, 256);
    for (const bad of ['0', '257', 'many', '1.5', '-4']) {
      assert.throws(() => kubernetesSettings({ CODEXK8S_LAUNCH_CONCURRENCY: bad }), (e: Error) => e.name === 'ConfigError' && e.message.includes('CODEXK8S_LAUNCH_CONCURRENCY'), bad);
    }
  });

  it('refuses a setting that is not a Docker config, without echoing it', () => {
    assert.equal(kubernetesSettings({ CODEXK8S_AGENT_IMAGE_PULL_SECRET: pullSecret }).agentImagePullSecret, pullSecret);
    assert.equal(kubernetesSettings({ CODEXK8S_AGENT_IMAGE_PULL_SECRET: '' }).agentImagePullSecret, undefined);
    for (const bad of ['hunter2-not-json', '{"auth":"x"}', '{"auths":[]}']) {
      assert.throws(() => kubernetesSettings({ CODEXK8S_AGENT_IMAGE_PULL_SECRET: bad }), (e: Error) => /Docker config JSON/.test(e.message) && !e.message.includes(bad));
    }
  });
});

describe('the result a run\'s pod reports', () => {
  const pod = (name: string, message: string) => ({ status: { containerStatuses: [{ name, image: 'x', imageID: '', ready: false, restartCount: 0, state: { terminated: { exitCode: 0, message } } }] } });
  it('is read from the publish container\'s termination message', () => {
    const result = { branch: 'codex/issue-7', commit: 'abc123', pullRequest: 100, checkpoint: false };
    assert.deepEqual(resultOfPods([pod('publish', JSON.stringify(result))]), result);
  });
  it('a failure\'s reason is the first failed step\'s own message, with secrets, e-mails and tokens redacted', () => {
    const key = `key-${randomUUID()}`;
    const ended = (name: string, exitCode: number, message?: string) => ({ name, state: { terminated: { exitCode, ...(message === undefined ? {} : { message }) } } });
    const pod = (init: object[], containers: object[]) => ({ status: { initContainerStatuses: init, containerStatuses: containers } }) as never;
    const leaked = JSON.stringify({ error: `here is ${key}, ${secrets.repositoryToken} and someone@example.com` });
    const reason = failureOfPods([pod([ended('checkout', 0)], [ended('agent', 1, leaked), ended('publish', 1, JSON.stringify({ error: 'later' }))])], [key]);
    assert.equal(reason, 'agent: here is [redacted], [redacted] and [redacted]');
    assert.equal(failureOfPods([pod([ended('checkout', 1, JSON.stringify({ error: 'first' }))], [ended('agent', 1, leaked)])]), 'checkout: first', 'the first step that failed');
    assert.equal(failureOfPods([pod([], [ended('agent', 1, 'plain text'), ended('publish', 0, JSON.stringify({ error: 'x' }))])]), undefined, 'none of the runner\'s: the Job\'s reason stands');
  });

  it('is nothing when the message is missing, malformed, or from another container', () => {
    assert.equal(resultOfPods([pod('publish', 'not json')]), undefined);
    assert.equal(resultOfPods([pod('publish', JSON.stringify({ branch: 'x' }))]), undefined);
    assert.equal(resultOfPods([pod('agent', JSON.stringify({ branch: 'b', commit: 'c', pullRequest: 1, checkpoint: false }))]), undefined);
  });
});
