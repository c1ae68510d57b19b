import { Job } from 'kubernetes-models/batch/v1/Job';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { Role } from 'kubernetes-models/rbac.authorization.k8s.io/v1/Role';
import { RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding';
import { LimitRange } from 'kubernetes-models/v1/LimitRange';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { ResourceQuota } from 'kubernetes-models/v1/ResourceQuota';
import { Secret } from 'kubernetes-models/v1/Secret';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import type { IContainer } from 'kubernetes-models/v1/Container';

/** The label every object the platform makes carries, and what the reaper and the watch select on. */
export const MANAGED_BY = { 'app.kubernetes.io/managed-by': 'codex-k8s' } as const;
/** The label naming the installation (its database's `installation` row) that made an object. */
export const INSTALLATION_LABEL = 'codex-k8s.io/installation';

export interface RunObjectsSpec {
  runId: string;
  projectId: string;
  agent: string;
  issue: number;
  /** CODEXK8S_AGENT_IMAGE. */
  image: string;
  /** activeDeadlineSeconds of the Job (CODEXK8S_RUN_DEADLINE). */
  deadlineSeconds: number;
  /** Longer than recording the outcome needs: the Job stays readable after it ends. */
  ttlAfterFinishedSeconds: number;
  quota: { cpu: string; memory: string; pods: number };
  /** TCP ports the agent may reach outside the cluster (default 443); DNS is always allowed. */
  egressPorts: readonly number[];
  /** This installation's id, labelled on every object (installations may share a cluster). */
  installation?: string;
  /** What the agent runner needs to know of its run (no secret among it). */
  runner?: { repository: string; subjectKind: 'issue' | 'pull_request'; issueBodySha256?: string; learningMode: boolean; githubApiUrl: string };
}

/** Names are derived from the run id, so a reactor replayed after a crash finds "already exists" and goes on. */
export const runNames = (runId: string) => ({
  namespace: `codex-run-${runId}`,
  serviceAccount: 'agent',
  role: 'agent',
  job: 'agent',
  openaiSecret: 'openai',
  repositorySecret: 'repository',
  pullSecret: 'registry',
});

// Where the Secrets are mounted: as files, never as literal values in the Job's spec.
const OPENAI_DIR = '/var/run/codex/openai';
const REPOSITORY_DIR = '/var/run/codex/repository';
const WORKSPACE = '/workspace';
// The agent and the publisher run as different users: the agent cannot read the token's files.
const AGENT_UID = 1000;
const PUBLISH_UID = 1001;
// codex refuses to put its helpers under /tmp, and does not make its home itself.
const CODEX_HOME = '/var/lib/codex';

const restricted = (uid: number) => ({
  runAsNonRoot: true,
  runAsUser: uid,
  runAsGroup: uid,
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  capabilities: { drop: ['ALL'] },
  seccompProfile: { type: 'RuntimeDefault' as const },
});

/** A Kubernetes quantity in its base unit (cores, bytes); undefined when it is not one. */
export function quantity(raw: string): number | undefined {
  const m = /^(\d+(?:\.\d*)?|\.\d+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/.exec(raw.trim());
  if (!m) return undefined;
  const scale: Record<string, number> = { '': 1, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 };
  return Number(m[1]) * scale[m[2] ?? '']!;
}

const MI = 2 ** 20;
/** The smallest quota a run's pod can work in: codex and Node.js need room. */
export const MIN_QUOTA = { cpu: '200m', memory: '512Mi' };

/**
 * The containers' requests and limits, cut from the run's quota so the pod always fits in it: the
 * running containers (agent and publish) together take the whole quota's limits, publish a small
 * part; checkout (init, alone) as much as the agent. Requests are a quarter of limits. A quota that
 * is not a quantity, or is under MIN_QUOTA, is refused (a RangeError naming the setting).
 */
export function podResources(quota: { cpu: string; memory: string }) {
  const cpu = quantity(quota.cpu);
  const memory = quantity(quota.memory);
  if (cpu === undefined || cpu < quantity(MIN_QUOTA.cpu)!) throw new RangeError(`CODEXK8S_RUN_QUOTA_CPU must be a Kubernetes quantity of at least ${MIN_QUOTA.cpu}`);
  if (memory === undefined || memory < quantity(MIN_QUOTA.memory)!) throw new RangeError(`CODEXK8S_RUN_QUOTA_MEMORY must be a Kubernetes quantity of at least ${MIN_QUOTA.memory}`);
  const milli = Math.floor(cpu * 1000);
  const mebi = Math.floor(memory / MI);
  const publish = { cpu: Math.min(250, Math.floor(milli / 4)), memory: Math.min(256, Math.floor(mebi / 4)) };
  const agent = { cpu: milli - publish.cpu, memory: mebi - publish.memory };
  const of = (share: { cpu: number; memory: number }) => ({
    requests: { cpu: `${Math.max(1, Math.floor(share.cpu / 4))}m`, memory: `${Math.max(1, Math.floor(share.memory / 4))}Mi` },
    limits: { cpu: `${share.cpu}m`, memory: `${share.memory}Mi` },
  });
  return { agent: of(agent), publish: of(publish) };
}

/**
 * Everything one run needs, in the order it is created: its namespace (labelled, Pod Security
 * `restricted`), a ServiceAccount with no token, a Role and RoleBinding limited to reading its own
 * pods, a ResourceQuota and LimitRange, a NetworkPolicy that denies all ingress and all egress but
 * DNS and the allow-list, the Secrets (mounted as files: the OpenAI key only for the agent, the
 * repository token only for checkout and publish; the registry's pull credentials when the agent
 * image is private), and the Job (backoffLimit 0, a deadline, a TTL).
 * Every object is a schema-checked model of the official Kubernetes types.
 */
export function runObjects(spec: RunObjectsSpec, secrets: { openaiKey: string; repositoryToken: string | null; imagePullSecret?: string | undefined }) {
  const names = runNames(spec.runId);
  const labels = {
    ...MANAGED_BY,
    'codex-k8s.io/run': spec.runId,
    'codex-k8s.io/project': spec.projectId,
    'codex-k8s.io/issue': String(spec.issue),
    'codex-k8s.io/agent': spec.agent,
    ...(spec.installation ? { [INSTALLATION_LABEL]: spec.installation } : {}),
  };
  const metadata = (name: string) => ({ name, namespace: names.namespace, labels });
  const resources = podResources(spec.quota);
  const container = (name: 'checkout' | 'agent' | 'publish', step: string, uid: number, mounts: NonNullable<IContainer['volumeMounts']>, env: { name: string; value: string }[] = []): IContainer => ({
    name,
    image: spec.image,
    // The image's entrypoint is codex-k8s (deploy/agent/Dockerfile).
    args: ['agent-run', step],
    env: [
      { name: 'CODEXK8S_RUN_ID', value: spec.runId },
      { name: 'CODEXK8S_WORKSPACE', value: WORKSPACE },
      { name: 'CODEXK8S_ISSUE_NUMBER', value: String(spec.issue) },
      { name: 'CODEXK8S_TOKEN_FILE', value: `${REPOSITORY_DIR}/token` },
      ...(spec.runner
        ? [
            { name: 'CODEXK8S_REPOSITORY', value: spec.runner.repository },
            { name: 'CODEXK8S_SUBJECT_KIND', value: spec.runner.subjectKind },
            { name: 'CODEXK8S_AGENT', value: spec.agent },
            { name: 'CODEXK8S_GITHUB_API_URL', value: spec.runner.githubApiUrl },
            { name: 'CODEXK8S_LEARNING_MODE', value: String(spec.runner.learningMode) },
            ...(spec.runner.issueBodySha256 ? [{ name: 'CODEXK8S_ISSUE_BODY_SHA256', value: spec.runner.issueBodySha256 }] : []),
          ]
        : []),
      ...env,
    ],
    resources: name === 'publish' ? resources.publish : resources.agent,
    securityContext: restricted(uid),
    terminationMessagePolicy: 'File',
    volumeMounts: mounts,
  });
  const workspaceMount = (readOnly: boolean) => ({ name: 'workspace', mountPath: WORKSPACE, ...(readOnly ? { readOnly } : {}) });
  // /tmp is HOME: the agent gets its own, so nothing it leaves there reaches a container with the token.
  const tmpMount = (volume: 'tmp' | 'agent-tmp') => ({ name: volume, mountPath: '/tmp' });
  const repositoryMount = { name: 'repository', mountPath: REPOSITORY_DIR, readOnly: true };

  const namespace = new Namespace({
    metadata: { name: names.namespace, labels: { ...labels, 'pod-security.kubernetes.io/enforce': 'restricted', 'pod-security.kubernetes.io/enforce-version': 'latest' } },
  });
  const objects = [
    new ServiceAccount({ metadata: metadata(names.serviceAccount), automountServiceAccountToken: false }),
    new Role({ metadata: metadata(names.role), rules: [{ apiGroups: [''], resources: ['pods', 'pods/log'], verbs: ['get', 'list', 'watch'] }] }),
    new RoleBinding({
      metadata: metadata(names.role),
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: names.role },
      subjects: [{ kind: 'ServiceAccount', name: names.serviceAccount, namespace: names.namespace }],
    }),
    new ResourceQuota({
      metadata: metadata('run-quota'),
      spec: { hard: { 'requests.cpu': spec.quota.cpu, 'limits.cpu': spec.quota.cpu, 'requests.memory': spec.quota.memory, 'limits.memory': spec.quota.memory, pods: String(spec.quota.pods) } },
    }),
    new LimitRange({ metadata: metadata('run-limits'), spec: { limits: [{ type: 'Container', default: resources.publish.limits, defaultRequest: resources.publish.requests }] } }),
    new NetworkPolicy({
      metadata: metadata('agent-egress'),
      spec: {
        podSelector: {},
        policyTypes: ['Ingress', 'Egress'],
        ingress: [],
        egress: [
          { ports: [{ protocol: 'UDP', port: 53 }, { protocol: 'TCP', port: 53 }] },
          { ports: spec.egressPorts.map((port) => ({ protocol: 'TCP', port })) },
        ],
      },
    }),
    new Secret({ metadata: metadata(names.openaiSecret), type: 'Opaque', stringData: { key: secrets.openaiKey } }),
    ...(secrets.repositoryToken === null ? [] : [new Secret({ metadata: metadata(names.repositorySecret), type: 'Opaque', stringData: { token: secrets.repositoryToken } })]),
    // A pull secret is read from the pod's own namespace only, so each run gets a copy.
    ...(secrets.imagePullSecret === undefined ? [] : [new Secret({ metadata: metadata(names.pullSecret), type: 'kubernetes.io/dockerconfigjson', stringData: { '.dockerconfigjson': secrets.imagePullSecret } })]),
    new Job({
      metadata: metadata(names.job),
      spec: {
        backoffLimit: 0,
        activeDeadlineSeconds: spec.deadlineSeconds,
        ttlSecondsAfterFinished: spec.ttlAfterFinishedSeconds,
        template: {
          metadata: { labels },
          spec: {
            restartPolicy: 'Never',
            serviceAccountName: names.serviceAccount,
            automountServiceAccountToken: false,
            shareProcessNamespace: false,
            ...(secrets.imagePullSecret === undefined ? {} : { imagePullSecrets: [{ name: names.pullSecret }] }),
            securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' }, fsGroup: AGENT_UID },
            initContainers: [container('checkout', 'checkout', AGENT_UID, [workspaceMount(false), tmpMount('tmp'), repositoryMount])],
            containers: [
              container(
                'agent', 'agent', AGENT_UID,
                [workspaceMount(false), tmpMount('agent-tmp'), { name: 'codex-home', mountPath: CODEX_HOME }, { name: 'openai', mountPath: OPENAI_DIR, readOnly: true }],
                [{ name: 'CODEX_HOME', value: CODEX_HOME }],
              ),
              // The workspace is the agent's: publish only reads it.
              container('publish', 'publish', PUBLISH_UID, [workspaceMount(true), tmpMount('tmp'), repositoryMount]),
            ],
            volumes: [
              { name: 'workspace', emptyDir: {} },
              { name: 'tmp', emptyDir: {} },
              { name: 'agent-tmp', emptyDir: {} },
              { name: 'codex-home', emptyDir: {} },
              { name: 'openai', secret: { secretName: names.openaiSecret, defaultMode: 0o440 } },
              // Mounted only into checkout and publish; the agent's container has no such volume.
              { name: 'repository', secret: { secretName: names.repositorySecret, defaultMode: 0o444, optional: secrets.repositoryToken === null } },
            ],
          },
        },
      },
    }),
  ];
  for (const object of [namespace, ...objects]) object.validate();
  return { names, namespace, objects };
}
