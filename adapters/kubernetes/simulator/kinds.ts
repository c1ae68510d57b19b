import { Namespace } from 'kubernetes-models/v1/Namespace';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Pod } from 'kubernetes-models/v1/Pod';
import { ResourceQuota } from 'kubernetes-models/v1/ResourceQuota';
import { LimitRange } from 'kubernetes-models/v1/LimitRange';
import { Role } from 'kubernetes-models/rbac.authorization.k8s.io/v1/Role';
import { RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { Job } from 'kubernetes-models/batch/v1/Job';

/** Everything the simulator knows about one resource: its URL names, its discovery entry and its schema. */
export interface ResourceKind {
  group: string; // '' for the core group
  version: string;
  plural: string;
  singular: string;
  kind: string;
  namespaced: boolean;
  shortNames: string[];
  /** Throws with a readable message when the object does not match the official schema. */
  validate(body: unknown): void;
  /** How metadata.name is checked: a DNS-1123 label (63), a subdomain (253) or a path segment (RBAC). */
  nameRule: 'label' | 'subdomain' | 'path-segment';
}

type Model = new (data: any) => { validate(): void };
const validator = (model: Model) => (body: unknown) => new model(body as object).validate();

const core = (plural: string, singular: string, kind: string, namespaced: boolean, shortNames: string[], model: Model, nameRule: ResourceKind['nameRule'] = 'subdomain'): ResourceKind =>
  ({ group: '', version: 'v1', plural, singular, kind, namespaced, shortNames, validate: validator(model), nameRule });

export const resourceKinds: ResourceKind[] = [
  core('namespaces', 'namespace', 'Namespace', false, ['ns'], Namespace, 'label'),
  core('serviceaccounts', 'serviceaccount', 'ServiceAccount', true, ['sa'], ServiceAccount),
  core('secrets', 'secret', 'Secret', true, [], Secret),
  core('pods', 'pod', 'Pod', true, ['po'], Pod),
  core('resourcequotas', 'resourcequota', 'ResourceQuota', true, ['quota'], ResourceQuota),
  core('limitranges', 'limitrange', 'LimitRange', true, ['limits'], LimitRange),
  { group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'roles', singular: 'role', kind: 'Role', namespaced: true, shortNames: [], validate: validator(Role), nameRule: 'path-segment' },
  { group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'rolebindings', singular: 'rolebinding', kind: 'RoleBinding', namespaced: true, shortNames: [], validate: validator(RoleBinding), nameRule: 'path-segment' },
  { group: 'networking.k8s.io', version: 'v1', plural: 'networkpolicies', singular: 'networkpolicy', kind: 'NetworkPolicy', namespaced: true, shortNames: ['netpol'], validate: validator(NetworkPolicy), nameRule: 'subdomain' },
  // Job names become the job-name label of their pods, so the API server holds them to a label's 63 characters.
  { group: 'batch', version: 'v1', plural: 'jobs', singular: 'job', kind: 'Job', namespaced: true, shortNames: [], validate: validator(Job), nameRule: 'label' },
];

export const apiVersionOf = (r: ResourceKind): string => (r.group ? `${r.group}/${r.version}` : r.version);
export const resourceKey = (r: ResourceKind): string => (r.group ? `${r.plural}.${r.group}` : r.plural);
export const kindByName = (kind: string): ResourceKind => resourceKinds.find((r) => r.kind === kind)!;

export function findResource(group: string, version: string, plural: string): ResourceKind | undefined {
  return resourceKinds.find((r) => r.group === group && r.version === version && r.plural === plural);
}

const dns1123Label = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const dns1123Subdomain = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** The API server's name rules; undefined when the name is acceptable, else why not. */
export function nameProblem(r: ResourceKind, name: string): string | undefined {
  switch (r.nameRule) {
    case 'label':
      return name.length <= 63 && dns1123Label.test(name) ? undefined : 'a lowercase RFC 1123 label must consist of lower case alphanumeric characters or \'-\', start and end with an alphanumeric character, and be at most 63 characters';
    case 'subdomain':
      return name.length <= 253 && dns1123Subdomain.test(name) ? undefined : 'a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, \'-\' or \'.\', and must start and end with an alphanumeric character';
    case 'path-segment':
      return name !== '.' && name !== '..' && !/[/%]/.test(name) ? undefined : 'may not contain \'/\' or \'%\' and may not be \'.\' or \'..\'';
  }
}

/**
 * Rules the real API server enforces beyond the OpenAPI schema (which leaves `image` optional, for
 * instance): the few that a manifest of ours could plausibly break.
 */
export function semanticProblems(r: ResourceKind, body: any): string[] {
  const problems: string[] = [];
  const podSpec = (spec: any, path: string) => {
    if (!spec || !Array.isArray(spec.containers) || spec.containers.length === 0) {
      problems.push(`${path}.containers: Required value`);
      return;
    }
    for (const field of ['initContainers', 'containers'] as const) {
      (spec[field] ?? []).forEach((c: any, i: number) => {
        if (!c?.name) problems.push(`${path}.${field}[${i}].name: Required value`);
        if (!c?.image) problems.push(`${path}.${field}[${i}].image: Required value`);
      });
    }
  };
  if (r.kind === 'Pod') podSpec(body.spec, 'spec');
  if (r.kind === 'Job') {
    const spec = body.spec?.template?.spec;
    podSpec(spec, 'spec.template.spec');
    if (spec && !['Never', 'OnFailure'].includes(spec.restartPolicy)) {
      problems.push('spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never"');
    }
  }
  return problems;
}
