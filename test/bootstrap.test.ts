import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectRoot } from '../adapters/paths.js';
import { kubectlPath, toolPath } from './support/kubectl.js';
import { parseAllDocuments } from 'yaml';

const script = join(projectRoot, 'bootstrap', 'host', 'bootstrap_remote_staging.sh');
let dir: string;
let record: string;

// Stand-ins for what the script would reach: each records its call; kubectl keeps created Secrets' stdin.
const fakes: Record<string, string> = {
  ssh: 'echo "ssh $*" >> "$FAKE_RECORD/calls"; exit 1',
  curl: 'echo "curl $*" >> "$FAKE_RECORD/calls"; exit 1',
  helm: 'echo "helm $*" >> "$FAKE_RECORD/calls"; exit 0',
  kubectl: `echo "kubectl $*" >> "$FAKE_RECORD/calls"
case " $* " in
  *" get secret "*) name="$(printf '%s\\n' "$*" | sed -E 's/.* get secret ([^ ]+).*/\\1/')"; [ -f "$FAKE_RECORD/secret-$name" ] || exit 1
    key="$(printf '%s\\n' "$*" | sed -nE 's/.*jsonpath=\\{\\.data\\.([A-Z0-9_]+)\\}.*/\\1/p')"
    if [ -n "$key" ]; then grep "^$key=" "$FAKE_RECORD/secret-$name" | cut -d= -f2- | tr -d '\\n' | base64 -w0; fi ;;
  *" get namespace "*) exit 1 ;;
  *" kustomize "*) if [ -n "\${REAL_KUBECTL:-}" ]; then exec "$REAL_KUBECTL" "$@"; fi ;;
  *" apply -f - "*) cat > /dev/null; echo "object configured" ;;
  *" apply -f "*) file="$(printf '%s\\n' "$*" | sed -E 's/(^|.* )apply -f ([^ ]+).*/\\2/')"; if [ -f "$file" ]; then cp "$file" "$FAKE_RECORD/applied.yaml"; fi ;;
  *" get job codex-k8s-migrate "*)
    case "$* \${FAKE_MIGRATION:-succeeded}" in
      *succeeded*succeeded) echo 1 ;;
      *Failed*failed) echo True ;;
    esac ;;
  *" create secret generic "*) name="$(printf '%s\\n' "$*" | sed -E 's/.* create secret generic ([^ ]+).*/\\1/')"; cat > "$FAKE_RECORD/secret-$name" ;;
  *) exit 0 ;;
esac`,
};

let configs = 0;
function config(mode: 'host' | 'cluster', extra = ''): string {
  const file = join(dir, `config-${mode}-${++configs}.env`);
  writeFileSync(join(dir, 'id.pub'), 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTests operator@laptop\n');
  writeFileSync(file, [
    `CODEXK8S_BOOTSTRAP_MODE="${mode}"`, 'CODEXK8S_STAGING_HOST="203.0.113.10"', 'CODEXK8S_STAGING_DOMAIN="staging.codex-k8s.example.com"',
    'CODEXK8S_ACME_EMAIL="ops@example.com"', 'CODEXK8S_OPERATOR_USER="codex"', `CODEXK8S_OPERATOR_PUBLIC_KEY_FILE="${join(dir, 'id.pub')}"`,
    `CODEXK8S_KUBECONFIG="${join(dir, 'kubeconfig')}"`, 'CODEXK8S_GITHUB_REPOSITORY="octo/codex-k8s"', 'CODEXK8S_GITHUB_RUNNER_PAT=""',
    'CODEXK8S_RUNNER_LABELS=\'["codex-k8s-deploy"]\'', 'CODEXK8S_OPENAI_API_KEY="sk-operator-supplied-key-0123456789"',
    'CODEXK8S_GITHUB_OAUTH_CLIENT_SECRET="oauth-client-secret-0123456789"', 'CODEXK8S_BOOTSTRAP_OWNER_EMAIL="owner@example.com"',
    'CODEXK8S_IMAGE_TAG="abc123"', extra,
  ].join('\n'));
  return file;
}

function bootstrap(args: string[]) {
  const result = spawnSync('bash', [script, ...args], {
    encoding: 'utf8', timeout: 60_000,
    env: { PATH: `${join(dir, 'bin')}:/usr/bin:/bin`, FAKE_RECORD: record, HOME: dir, REAL_KUBECTL: kubectlPath() ?? '' },
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}
const calls = () => (existsSync(join(record, 'calls')) ? readFileSync(join(record, 'calls'), 'utf8') : '');

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'codexk8s-bootstrap-'));
  record = join(dir, 'record');
  spawnSync('mkdir', ['-p', join(dir, 'bin'), record]);
  for (const [name, body] of Object.entries(fakes)) {
    writeFileSync(join(dir, 'bin', name), `#!/usr/bin/env bash\n${body}\n`);
    chmodSync(join(dir, 'bin', name), 0o755);
  }
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('the staging bootstrap', () => {
  it('is ShellCheck-clean (Debian\'s shellcheck), as is deploy/apply.sh; ShellCheck does find a broken script', (t) => {
    const shellcheck = toolPath('shellcheck');
    if (!shellcheck) return t.skip('the test setup could not fetch shellcheck');
    writeFileSync(join(dir, 'broken.sh'), '#!/bin/bash\nrm -rf $1/*\n');
    assert.notEqual(spawnSync(shellcheck, [join(dir, 'broken.sh')]).status, 0);
    const result = spawnSync(shellcheck, ['-x', script, join(projectRoot, 'deploy', 'apply.sh')], { encoding: 'utf8', cwd: projectRoot });
    assert.equal(result.status, 0, result.stdout);
  });

  it('--dry-run prints the host plan in order and connects to nothing', () => {
    const result = bootstrap(['--config', config('host'), '--dry-run']);
    assert.equal(result.code, 0, result.stderr);
    const steps = [...result.stdout.matchAll(/^\s*\d+\. (\S+)/gm)].map((m) => m[1]);
    assert.deepEqual(steps, ['check_host', 'operator_user', 'firewall', 'k3s', 'cert_manager', 'secrets', 'settings', 'runner', 'deploy', 'print_github']);
    assert.match(result.stdout, /Ubuntu 24\.04/);
    assert.match(result.stdout, /deny inbound but 22, 80 and 443/);
    assert.equal(calls(), '', 'nothing was called');
  });

  it('--dry-run prints the existing-cluster plan, which touches no host', () => {
    const result = bootstrap(['--config', config('host'), '--mode', 'cluster', '--dry-run']);
    assert.equal(result.code, 0, result.stderr);
    const steps = [...result.stdout.matchAll(/^\s*\d+\. (\S+)/gm)].map((m) => m[1]);
    assert.deepEqual(steps, ['check_cluster', 'cert_manager', 'secrets', 'settings', 'runner', 'deploy', 'print_github']);
    assert.equal(calls(), '');
  });

  it('refuses bad input with one line before doing anything', () => {
    const cases: [string[], RegExp][] = [
      [[], /--config FILE is required/],
      [['--config', join(dir, 'missing.env')], /cannot read/],
      [['--config', config('host'), '--mode', 'laptop'], /--mode must be host or cluster/],
      [['--config', config('host'), '--frobnicate'], /unknown option --frobnicate/],
      [['--config', config('host', 'CODEXK8S_OPERATOR_USER="Not A User"')], /CODEXK8S_OPERATOR_USER is not a user name/],
      [['--config', config('host', 'CODEXK8S_STAGING_HOST=""')], /CODEXK8S_STAGING_HOST is not set/],
      [['--config', config('cluster', 'CODEXK8S_STAGING_DOMAIN=""')], /CODEXK8S_STAGING_DOMAIN is needed to deploy/],
      [['--config', config('cluster', 'CODEXK8S_RUNNER_LABELS="self-hosted"')], /CODEXK8S_RUNNER_LABELS is not a JSON list/],
      [['--config', config('cluster', 'CODEXK8S_RUNNER_LABELS=\'["a;b"]\'')], /CODEXK8S_RUNNER_LABELS is not a JSON list/],
      [['--config', config('cluster', 'CODEXK8S_RUNNER_KIND="daemonset"')], /CODEXK8S_RUNNER_KIND must be scale-set or persistent/],
      [['--config', config('cluster', 'CODEXK8S_RUNNER_LABELS=\'["Deploy_Runner"]\'')], /the first of CODEXK8S_RUNNER_LABELS names the runner/],
      [['--config', config('cluster', 'CODEXK8S_IMAGE_REGISTRY="GHCR.io/Octo"')], /CODEXK8S_IMAGE_REGISTRY is not a lower-case registry path/],
      [['--config', config('cluster', 'CODEXK8S_GITHUB_REPOSITORY="octo"')], /CODEXK8S_GITHUB_REPOSITORY is not owner\/name/],
      [['--config', config('cluster', 'CODEXK8S_STAGING_DOMAIN="Ops.Example.org"')], /CODEXK8S_STAGING_DOMAIN is not a lower-case domain name/],
      [['--config', config('cluster'), '--environment', 'qa'], /--environment must be staging or production/],
      [['--config', config('cluster', 'CODEXK8S_REGISTRY_USERNAME="bot"')], /CODEXK8S_REGISTRY_PASSWORD is not set/],
    ];
    for (const [args, message] of cases) {
      const result = bootstrap(args);
      assert.equal(result.code, 1, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, message);
      assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
    }
    assert.equal(calls(), '');
  });

  it('generates the internal secrets once, of full length, stores them as Secrets and never prints them', () => {
    const first = bootstrap(['--config', config('cluster')]);
    assert.equal(first.code, 0, first.stderr);
    const stored = (name: string) => Object.fromEntries(readFileSync(join(record, `secret-${name}`), 'utf8').trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    const postgres = stored('postgres-secrets');
    const platform = stored('codex-k8s-secrets');
    const operatorSecrets = stored('codex-k8s-operator-secrets');
    for (const key of ['POSTGRES_PASSWORD', 'CODEXK8S_OWNER_PASSWORD', 'CODEXK8S_PLATFORM_PASSWORD', 'REPLICATION_PASSWORD']) assert.match(postgres[key]!, /^[0-9a-f]{48}$/, key);
    for (const key of ['CODEXK8S_JWT_KEYS', 'CODEXK8S_TOKEN_ENCRYPTION_KEYS', 'CODEXK8S_EMAIL_HASH_KEY']) {
      assert.equal(Buffer.from(platform[key]!.replace(/^k1:/, ''), 'base64').length, 32, key);
    }
    assert.match(platform.CODEXK8S_GITHUB_WEBHOOK_SECRET!, /^[0-9a-f]{64}$/);
    assert.equal(platform.CODEXK8S_DATABASE_URL, `postgres://codexk8s:${postgres.CODEXK8S_PLATFORM_PASSWORD}@postgres-primary:5432/codexk8s`);
    assert.equal(operatorSecrets.CODEXK8S_OPENAI_API_KEY, 'sk-operator-supplied-key-0123456789');
    assert.notEqual(postgres.CODEXK8S_OWNER_PASSWORD, postgres.CODEXK8S_PLATFORM_PASSWORD);
    const printed = first.stdout + first.stderr + calls();
    const secretValues = Object.entries({ ...postgres, ...platform, ...operatorSecrets }).filter(([key]) => /PASSWORD|KEY|SECRET|DATABASE/.test(key)).map(([, value]) => value);
    assert.equal(secretValues.length, 13);
    for (const value of secretValues) {
      assert.ok(!printed.includes(value), `a secret reached the output or a command line (${value.slice(0, 4)}…)`);
    }
    assert.match(first.stdout, /api\/v1\/webhooks\/github/);
    assert.match(calls(), /kubectl apply -f \S+rendered\.yaml --selector/, 'migrations are applied first');
    assert.doesNotMatch(calls(), /^ssh /m, 'no host is touched');

    // A rerun keeps the generated secrets, and applies the operator's values as they are now.
    const again = bootstrap(['--config', config('cluster', 'CODEXK8S_OPENAI_API_KEY="sk-filled-in-later-0123456789"')]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /postgres-secrets exist: kept/);
    assert.match(again.stderr, /codex-k8s-secrets exist: kept/);
    assert.deepEqual(stored('postgres-secrets'), postgres, 'a rerun keeps the database passwords');
    assert.deepEqual(stored('codex-k8s-secrets'), platform, 'a rerun keeps the platform\'s keys');
    assert.equal(stored('codex-k8s-operator-secrets').CODEXK8S_OPENAI_API_KEY, 'sk-filled-in-later-0123456789');

    // A run that stopped after the database passwords: the next one keeps them and builds the URLs from them.
    rmSync(join(record, 'secret-codex-k8s-secrets'));
    const resumed = bootstrap(['--config', config('cluster')]);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.deepEqual(stored('postgres-secrets'), postgres);
    assert.equal(stored('codex-k8s-secrets').CODEXK8S_DATABASE_URL, `postgres://codexk8s:${postgres.CODEXK8S_PLATFORM_PASSWORD}@postgres-primary:5432/codexk8s`);
    assert.equal(stored('codex-k8s-secrets').CODEXK8S_DATABASE_OWNER_URL, `postgres://codexk8s_owner:${postgres.CODEXK8S_OWNER_PASSWORD}@postgres-primary:5432/codexk8s`);
  });

  it('runs an autoscaled deploy runner where there is a domain: its PAT in a Secret, never on a command line; it deploys as the deployer', () => {
    // Quotes, a dollar and a backslash reach the Secret as they are.
    const pat = `github_pat_11AAAA'x$HOME\\y"0123456789`;
    const result = bootstrap(['--config', config('cluster', `CODEXK8S_GITHUB_RUNNER_PAT='${pat.replace(/'/g, `'\\''`)}'`)]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(readFileSync(join(record, 'secret-codex-k8s-runner-pat'), 'utf8').trim(), `github_token=${pat}`);
    const log = calls();
    assert.match(log, /kubectl apply -k \S+\/deploy\/runner\/base/, 'the deployer\'s namespace and rights');
    assert.match(log, /kubectl -n codex-k8s-staging create rolebinding codex-k8s-deployer --clusterrole=admin --serviceaccount=codex-k8s-runners:codex-k8s-deployer/);
    assert.match(log, /helm upgrade --install codex-k8s-deploy --namespace codex-k8s-runners --version 0\.14\.2 -f \S+\/deploy\/runner\/scale-set\.values\.yaml --set runnerScaleSetName=codex-k8s-deploy --set githubConfigUrl=https:\/\/github\.com\/octo\/codex-k8s --set-json scaleSetLabels=\["codex-k8s-deploy"\]/);
    assert.doesNotMatch(log, /runner\/persistent/);
    assert.ok(!(log + result.stdout + result.stderr).includes('github_pat_11AAAA'), 'the PAT reached a command line or the output');
  });

  it('runs one persistent deploy runner where there is no domain, and deploys nothing without one', () => {
    const pat = 'github_pat_22BBBB0123456789';
    rmSync(join(record, 'calls'), { force: true });
    const result = bootstrap(['--config', config('cluster', `CODEXK8S_GITHUB_RUNNER_PAT="${pat}"\nCODEXK8S_STAGING_DOMAIN=""\nCODEXK8S_IMAGE_TAG=""\nCODEXK8S_RUNNER_LABELS='["codex-k8s-deploy", "lab"]'`)]);
    assert.equal(result.code, 0, result.stderr);
    const log = calls();
    assert.match(log, /create configmap codex-k8s-runner --from-literal=RUNNER_URL=https:\/\/github\.com\/octo\/codex-k8s --from-literal=RUNNER_NAME=codex-k8s-deploy --from-literal=RUNNER_LABELS=codex-k8s-deploy,lab/);
    assert.match(log, /kubectl apply -k \S+\/deploy\/runner\/persistent/);
    assert.match(log, /rollout restart deployment\/codex-k8s-runner/);
    assert.doesNotMatch(log, /^helm /m);
    assert.doesNotMatch(log, /apply\.sh|rendered\.yaml/, 'no deploy');
    assert.match(result.stderr, /CODEXK8S_STAGING_DOMAIN is empty: nothing deployed/);
    assert.doesNotMatch(result.stdout, /https:\/\/\//, 'no URL without a host is printed');
    assert.ok(!(calls() + result.stdout + result.stderr).includes(pat));
  });

  it('stores a private registry\'s pull credentials as a Docker config Secret, and never prints them', () => {
    const password = 'ghp_registryPASSWORD0123456789';
    const result = bootstrap(['--config', config('cluster', `CODEXK8S_REGISTRY_USERNAME="octo-bot"\nCODEXK8S_REGISTRY_PASSWORD="${password}"\nCODEXK8S_IMAGE_REGISTRY="registry.example.com:5000/octo"`)]);
    assert.equal(result.code, 0, result.stderr);
    const docker = JSON.parse(readFileSync(join(record, 'secret-codex-k8s-registry'), 'utf8')) as { auths: Record<string, { auth: string }> };
    assert.deepEqual(Object.keys(docker.auths), ['registry.example.com:5000']);
    assert.equal(Buffer.from(docker.auths['registry.example.com:5000']!.auth, 'base64').toString(), `octo-bot:${password}`);
    assert.match(calls(), /create secret generic codex-k8s-registry --type=kubernetes\.io\/dockerconfigjson --from-file=\.dockerconfigjson=\/dev\/stdin/);
    assert.ok(!(calls() + result.stdout + result.stderr).includes(password));
  });

  it('deploys the overlay on the configured domain, with the configured ACME e-mail', (t) => {
    if (!kubectlPath()) return t.skip('the test setup could not fetch kubectl');
    const result = bootstrap(['--config', config('cluster', 'CODEXK8S_STAGING_DOMAIN="ops.example.org"\nCODEXK8S_ACME_EMAIL="acme@example.org"')]);
    assert.equal(result.code, 0, result.stderr);
    const applied = parseAllDocuments(readFileSync(join(record, 'applied.yaml'), 'utf8')).map((d) => d.toJS() as { kind: string; spec: Record<string, any> });
    const ingress = applied.find((o) => o.kind === 'Ingress')!;
    assert.equal(ingress.spec.rules[0].host, 'ops.example.org');
    assert.deepEqual(ingress.spec.tls[0].hosts, ['ops.example.org']);
    assert.equal(applied.find((o) => o.kind === 'ClusterIssuer')!.spec.acme.email, 'acme@example.org');
    const api = applied.find((o) => o.kind === 'Deployment' && (o as { metadata?: { name?: string } }).metadata?.name === 'codex-k8s-api')!;
    assert.equal(api.spec.template.spec.containers[0].image, 'ghcr.io/octo/codex-k8s:abc123', 'the image from the owner\'s registry at the tag deployed');
    assert.deepEqual(api.spec.template.spec.imagePullSecrets, [{ name: 'codex-k8s-registry' }]);
    const settings = applied.find((o) => o.kind === 'ConfigMap' && (o as { metadata?: { name?: string } }).metadata?.name === 'codex-k8s-config') as unknown as { data: Record<string, string> };
    assert.equal(settings.data.CODEXK8S_AGENT_IMAGE, 'ghcr.io/octo/codex-k8s-agent:abc123', 'the agent built with it');
    assert.equal(settings.data.CODEXK8S_PUBLIC_URL, 'https://ops.example.org', 'the OAuth callback\'s base');
    assert.match(result.stdout, /https:\/\/ops\.example\.org\/api\/v1\/webhooks\/github/);
  });

  it('with no images yet, applies only the cluster-wide objects, which the deploy runner may not', () => {
    rmSync(join(record, 'calls'), { force: true });
    const result = bootstrap(['--config', config('cluster', 'CODEXK8S_IMAGE_TAG=""')]);
    assert.equal(result.code, 0, result.stderr);
    const applies = calls().split('\n').filter((l) => / apply -f \S+rendered\.yaml/.test(l));
    assert.deepEqual(applies.map((l) => l.replace(/^.* --selector /, '')), ['codex-k8s.io/scope=cluster']);
    assert.doesNotMatch(calls(), /codex-k8s-migrate|rollout status deployment\/codex-k8s/, 'nothing migrates or rolls');
  });

  it('--environment production prepares and deploys the production namespace and overlay', (t) => {
    if (!kubectlPath()) return t.skip('the test setup could not fetch kubectl');
    rmSync(join(record, 'calls'), { force: true });
    const result = bootstrap(['--config', config('cluster', `CODEXK8S_GITHUB_RUNNER_PAT="github_pat_33CCCC0123456789"\nCODEXK8S_RUNNER_LABELS='["codex-k8s-production"]'`), '--environment', 'production']);
    assert.equal(result.code, 0, result.stderr);
    assert.match(calls(), /kubectl -n codex-k8s create secret generic codex-k8s-operator-secrets/);
    assert.match(calls(), /kubectl -n codex-k8s create rolebinding codex-k8s-deployer --clusterrole=admin/);
    assert.match(calls(), /helm upgrade --install codex-k8s-production .* --set runnerScaleSetName=codex-k8s-production /, 'a runner of its own');
    assert.match(calls(), /kubectl -n codex-k8s rollout status deployment\/codex-k8s-api/);
    assert.doesNotMatch(calls(), /codex-k8s-staging/);
    assert.match(result.stdout, /CODEXK8S_PRODUCTION_RUNNER_LABELS = \["codex-k8s-production"\]/);
  });

  it('deploy/apply.sh in the workflows\' scope applies no cluster-wide object; a bad scope is refused', () => {
    rmSync(join(record, 'calls'), { force: true });
    const env = { PATH: `${join(dir, 'bin')}:/usr/bin:/bin`, FAKE_RECORD: record, HOME: dir, CODEXK8S_IMAGE_REGISTRY: 'ghcr.io/octo', CODEXK8S_PUBLIC_HOST: 'ops.example.org', CODEXK8S_ACME_EMAIL: 'acme@example.org' };
    const result = spawnSync('bash', [join(projectRoot, 'deploy', 'apply.sh'), 'staging', 'abc123'], { encoding: 'utf8', timeout: 60_000, env: { ...env, CODEXK8S_APPLY_SCOPE: 'namespaced' } });
    assert.equal(result.status, 0, result.stderr);
    const applies = calls().split('\n').filter((l) => / apply -f \S+rendered\.yaml/.test(l));
    assert.equal(applies.length, 2);
    for (const line of applies) assert.match(line, /--selector codex-k8s\.io\/scope!=cluster(,|$)/);
    const bad = spawnSync('bash', [join(projectRoot, 'deploy', 'apply.sh'), 'staging', 'abc123'], { encoding: 'utf8', env: { ...env, CODEXK8S_APPLY_SCOPE: 'everything' } });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /CODEXK8S_APPLY_SCOPE must be all, namespaced or cluster/);
  });

  it('deploy/apply.sh stops at once when the migration Job failed, and rolls nothing', () => {
    const started = Date.now();
    const result = spawnSync('bash', [join(projectRoot, 'deploy', 'apply.sh'), 'staging', 'abc123'], {
      encoding: 'utf8', timeout: 60_000, env: { PATH: `${join(dir, 'bin')}:/usr/bin:/bin`, FAKE_RECORD: record, HOME: dir, FAKE_MIGRATION: 'failed', CODEXK8S_IMAGE_REGISTRY: 'ghcr.io/octo', CODEXK8S_PUBLIC_HOST: 'ops.example.org', CODEXK8S_ACME_EMAIL: 'acme@example.org' },
    });
    assert.equal(result.status, 1, result.stderr);
    assert.match(result.stderr, /the migration Job failed; see kubectl -n codex-k8s-staging logs job\/codex-k8s-migrate/);
    assert.ok(Date.now() - started < 30_000, 'not at the timeout');
    assert.doesNotMatch(calls().split('\n').slice(-3).join('\n'), /rollout status/);
  });
});
