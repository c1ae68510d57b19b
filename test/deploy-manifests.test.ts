import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { readFileSync } from 'node:fs';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { Service } from 'kubernetes-models/v1/Service';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { ClusterRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole';
import { ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { Ingress } from 'kubernetes-models/networking.k8s.io/v1/Ingress';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { projectRoot } from '../adapters/paths.js';
import { kubectlPath } from './support/kubectl.js';

// The schema package the simulator validates with, by apiVersion/kind.
const schemas: Record<string, new (data: never) => { validate(): void }> = {
  'apps/v1/Deployment': Deployment, 'apps/v1/StatefulSet': StatefulSet, 'v1/Service': Service, 'v1/ConfigMap': ConfigMap, 'v1/Namespace': Namespace,
  'v1/ServiceAccount': ServiceAccount, 'rbac.authorization.k8s.io/v1/ClusterRole': ClusterRole, 'rbac.authorization.k8s.io/v1/ClusterRoleBinding': ClusterRoleBinding,
  'batch/v1/Job': Job, 'policy/v1/PodDisruptionBudget': PodDisruptionBudget, 'networking.k8s.io/v1/Ingress': Ingress, 'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
};
/** Custom resources the Kubernetes schemas do not hold: checked by shape here. */
const customKinds = new Set(['cert-manager.io/v1/ClusterIssuer']);

type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> }; [k: string]: unknown };
type Container = { name: string; env?: { name: string; value?: string; valueFrom?: unknown }[]; resources?: { requests?: object; limits?: object }; securityContext?: Record<string, unknown>; readinessProbe?: { httpGet?: { path: string } }; livenessProbe?: { httpGet?: { path: string } } };
type PodSpec = { securityContext?: Record<string, unknown> & { seccompProfile?: { type: string } }; containers: Container[]; initContainers?: Container[]; serviceAccountName?: string; automountServiceAccountToken?: boolean };

const overlays = { staging: 'codex-k8s-staging', production: 'codex-k8s' } as const;
const secretish = /PASSWORD|SECRET|TOKEN|_KEYS?$|DATABASE(_OWNER)?_URL|REPLICA_URLS/;

function render(overlay: string, folder = join(projectRoot, 'deploy', 'overlays', overlay)): K8sObject[] {
  const out = execFileSync(kubectlPath()!, ['kustomize', folder], { encoding: 'utf8' });
  return parseAllDocuments(out).map((d) => d.toJSON() as K8sObject).filter(Boolean);
}
const podSpecOf = (o: K8sObject): PodSpec | undefined => (o.spec as { template?: { spec: PodSpec } } | undefined)?.template?.spec;

describe('deploy manifests (kustomize base and overlays)', () => {
  it('the schemas refuse a broken object, so a pass below means something', () => {
    assert.throws(() => new Deployment({ metadata: { name: 'x' }, spec: { template: { spec: { containers: [] } } } } as never).validate());
  });

  for (const [overlay, namespace] of Object.entries(overlays)) {
    it(`${overlay}: renders with Debian trixie's kubectl and every object passes the Kubernetes schemas`, (t) => {
      if (!kubectlPath()) return t.skip('the test setup could not fetch kubectl');
      const objects = render(overlay);
      const kinds = objects.map((o) => o.kind).sort();
      for (const kind of ['ClusterIssuer', 'ClusterRole', 'ClusterRoleBinding', 'ConfigMap', 'Deployment', 'Ingress', 'Job', 'Namespace', 'NetworkPolicy', 'PodDisruptionBudget', 'Service', 'StatefulSet']) {
        assert.ok(kinds.includes(kind), `${overlay} has a ${kind}`);
      }
      for (const o of objects) {
        const key = `${o.apiVersion}/${o.kind}`;
        if (customKinds.has(key)) {
          assert.equal((o.spec as { acme: { solvers: { http01?: unknown }[] } }).acme.solvers[0]!.http01 !== undefined, true, 'HTTP-01');
          continue;
        }
        const Schema = schemas[key];
        assert.ok(Schema, `${key} (${o.metadata.name}) has a schema in the test`);
        assert.doesNotThrow(() => new Schema(o as never).validate(), `${key} ${o.metadata.name}`);
        assert.equal(o.metadata.labels?.['app.kubernetes.io/part-of'] ?? (o.kind === 'Namespace' ? 'codex-k8s' : undefined), 'codex-k8s', `${key} ${o.metadata.name} is labelled`);
        const clusterScoped = ['Namespace', 'ClusterRole', 'ClusterRoleBinding'].includes(o.kind);
        if (!clusterScoped) assert.equal(o.metadata.namespace, namespace, `${key} ${o.metadata.name} is in ${namespace}`);
      }
    });

    it(`${overlay}: no wildcard rule, no literal secret, restricted security contexts, probes, limits, PDBs`, (t) => {
      if (!kubectlPath()) return t.skip('the test setup could not fetch kubectl');
      const objects = render(overlay);
      assert.equal(objects.filter((o) => o.kind === 'Secret').length, 0, 'no Secret in a manifest: the bootstrap makes them');
      for (const o of objects.filter((x) => x.kind === 'ClusterRole' || x.kind === 'Role')) {
        for (const rule of o.rules as { apiGroups: string[]; resources: string[]; verbs: string[] }[]) {
          for (const part of [...rule.apiGroups, ...rule.resources, ...rule.verbs]) assert.notEqual(part, '*', `${o.metadata.name}: no wildcard`);
        }
      }
      for (const o of objects.filter((x) => x.kind === 'ConfigMap' && x.metadata.name.includes('config'))) {
        for (const key of Object.keys(o.data as object)) assert.doesNotMatch(key, secretish, `${o.metadata.name}: ${key} belongs in a Secret`);
      }
      // The worker holds what its code calls and no more: a run's objects are only created, never read back or deleted.
      const worker = objects.find((o) => o.kind === 'ClusterRole' && o.metadata.name.startsWith('codex-k8s-worker'))!;
      const verbs = Object.fromEntries((worker.rules as { resources: string[]; verbs: string[] }[]).flatMap((r) => r.resources.map((res) => [res, [...r.verbs].sort().join(',')])));
      assert.deepEqual(verbs, {
        namespaces: 'create,delete,list', serviceaccounts: 'create', secrets: 'create', resourcequotas: 'create', limitranges: 'create',
        roles: 'create', rolebindings: 'create', networkpolicies: 'create', pods: 'get,list,watch', 'pods/log': 'get,list,watch', jobs: 'create,delete,get,list,watch',
      });
      // Only the worker is bound to a role; the api has no Kubernetes API access at all.
      const bindings = objects.filter((o) => o.kind === 'ClusterRoleBinding' || o.kind === 'RoleBinding');
      assert.deepEqual(bindings.flatMap((b) => (b.subjects as { name: string; namespace: string }[]).map((s) => `${s.namespace}/${s.name}`)), [`${namespace}/codex-k8s-worker`]);
      for (const o of objects) {
        const pod = podSpecOf(o);
        if (!pod) continue;
        const where = `${o.kind} ${o.metadata.name}`;
        assert.equal(pod.securityContext?.runAsNonRoot, true, `${where}: runAsNonRoot`);
        assert.equal(pod.securityContext?.seccompProfile?.type, 'RuntimeDefault', `${where}: seccomp`);
        if (pod.serviceAccountName !== 'codex-k8s-worker') assert.equal(pod.automountServiceAccountToken, false, `${where}: no API token`);
        for (const c of [...pod.containers, ...(pod.initContainers ?? [])]) {
          assert.equal(c.securityContext?.allowPrivilegeEscalation, false, `${where}/${c.name}: no privilege escalation`);
          assert.deepEqual((c.securityContext?.capabilities as { drop: string[] }).drop, ['ALL'], `${where}/${c.name}: capabilities dropped`);
          assert.equal(c.securityContext?.readOnlyRootFilesystem, true, `${where}/${c.name}: read-only root`);
          assert.ok(c.resources?.requests && c.resources.limits, `${where}/${c.name}: requests and limits`);
          for (const env of c.env ?? []) {
            if (secretish.test(env.name)) assert.ok(env.valueFrom && env.value === undefined, `${where}/${c.name}: ${env.name} comes from a Secret`);
          }
        }
      }
      for (const name of ['codex-k8s-api', 'codex-k8s-worker']) {
        const deployment = objects.find((o) => o.kind === 'Deployment' && o.metadata.name === name)!;
        const container = podSpecOf(deployment)!.containers[0]!;
        assert.equal(container.readinessProbe?.httpGet?.path, '/readyz', `${name}: readiness`);
        assert.equal(container.livenessProbe?.httpGet?.path, '/healthz', `${name}: liveness`);
        assert.ok(objects.some((o) => o.kind === 'PodDisruptionBudget' && o.metadata.name === name), `${name}: a PodDisruptionBudget`);
      }
      const migrate = objects.find((o) => o.kind === 'Job' && o.metadata.name === 'codex-k8s-migrate')!;
      const migrateEnv = podSpecOf(migrate)!.containers[0]!.env!.map((e) => e.name);
      assert.ok(migrateEnv.includes('CODEXK8S_DATABASE_OWNER_URL'), 'migrations run as the owner');
      const replica = objects.find((o) => o.kind === 'StatefulSet' && o.metadata.name === 'postgres-replica')!;
      assert.match(JSON.stringify(podSpecOf(replica)!.initContainers), /pg_basebackup .* -R /, 'the replica streams from the primary');
      for (const set of objects.filter((o) => o.kind === 'StatefulSet')) {
        assert.equal((set.spec as { volumeClaimTemplates: { spec: { storageClassName: string } }[] }).volumeClaimTemplates[0]!.spec.storageClassName, 'local-path');
      }
    });
  }

  describe('the deploy runner (deploy/runner)', () => {
    type Rule = { apiGroups: string[]; resources: string[]; verbs: string[] };
    const grants = (rules: Rule[]) => new Set(rules.flatMap((r) => r.apiGroups.flatMap((g) => r.resources.flatMap((res) => r.verbs.map((v) => `${g}/${res}/${v}`)))));

    it('renders, passes the schemas, and runs one runner whose PAT comes from a Secret; only its Docker daemon is privileged', (t) => {
      if (!kubectlPath()) return t.skip('the test setup could not fetch kubectl');
      const objects = render('runner', join(projectRoot, 'deploy', 'runner', 'persistent'));
      assert.deepEqual(objects.map((o) => `${o.kind}/${o.metadata.name}`).sort(), ['Deployment/codex-k8s-runner', 'Namespace/codex-k8s-runners', 'ServiceAccount/codex-k8s-deployer']);
      for (const o of objects) assert.doesNotThrow(() => new schemas[`${o.apiVersion}/${o.kind}`]!(o as never).validate(), `${o.kind} ${o.metadata.name}`);
      assert.equal(objects.find((o) => o.kind === 'Namespace')!.metadata.labels!['pod-security.kubernetes.io/enforce'], 'privileged', 'dind is refused elsewhere');
      const pod = podSpecOf(objects.find((o) => o.kind === 'Deployment')!)!;
      assert.equal(pod.serviceAccountName, 'codex-k8s-deployer');
      const runner = pod.containers.find((c) => c.name === 'runner')!;
      const pat = runner.env!.find((e) => e.name === 'ACTIONS_RUNNER_INPUT_PAT')!;
      assert.deepEqual(pat.valueFrom, { secretKeyRef: { name: 'codex-k8s-runner-pat', key: 'github_token' } });
      assert.doesNotMatch(JSON.stringify(runner), /--pat|--token/, 'no credential on the command line');
      assert.deepEqual(pod.containers.filter((c) => c.securityContext?.privileged === true).map((c) => c.name), ['dind']);
      assert.equal(runner.securityContext?.allowPrivilegeEscalation, false);
    });

    it('the deployer holds no right across the cluster; every cluster-wide object of the overlays is marked as the bootstrap\'s, and nothing else is', (t) => {
      if (!kubectlPath()) return t.skip('the test setup could not fetch kubectl');
      const base = render('runner', join(projectRoot, 'deploy', 'runner', 'base'));
      assert.deepEqual(base.filter((o) => /Role|Binding/.test(o.kind)), [], 'bound only by the bootstrap, as admin of a platform namespace');
      const clusterScoped = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'ClusterIssuer']);
      for (const overlay of Object.keys(overlays)) {
        const objects = render(overlay);
        assert.ok(objects.some((o) => clusterScoped.has(o.kind)));
        for (const o of objects) {
          assert.equal(o.metadata.labels?.['codex-k8s.io/scope'] === 'cluster', clusterScoped.has(o.kind), `${overlay}: ${o.kind} ${o.metadata.name}`);
        }
      }
    });

    it('the scale set builds with a Docker daemon and deploys as the deployer', () => {
      const values = parse(readFileSync(join(projectRoot, 'deploy', 'runner', 'scale-set.values.yaml'), 'utf8')) as Record<string, any>;
      assert.equal(values.containerMode.type, 'dind');
      assert.equal(values.template.spec.serviceAccountName, 'codex-k8s-deployer');
      assert.equal(values.githubConfigSecret, 'codex-k8s-runner-pat', 'the PAT is read from the Secret the bootstrap makes');
    });
  });
});
