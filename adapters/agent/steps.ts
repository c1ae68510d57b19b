import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Octokit } from '@octokit/rest';
import { projectRoot } from '../paths.js';
import { scrubText } from '../log.js';

const run = promisify(execFile);

/** What the agent's pod knows of its run, from the environment its Job gives it (never a secret). */
export interface AgentRunSettings {
  workspace: string;
  /** `owner/name` on GitHub, and where to clone it from (an https URL, or a path in tests). */
  repository: string;
  cloneUrl: string;
  /** The issue's or pull request's number (a pull request is an issue in GitHub's API). */
  issue: number;
  /** What was labelled: an issue gets a branch of its own, a pull request is revised on its branch. */
  subject: 'issue' | 'pull_request';
  /** A fixed branch (CODEXK8S_BRANCH); unset, see branchOf. */
  branch: string | null;
  /** The SHA-256 of the issue's body when it was labelled: text edited since never reaches the agent. */
  issueBodySha256: string | null;
  githubApiUrl: string;
  /** Where the repository token is mounted (checkout and publish only). */
  tokenFile: string;
  learningMode: boolean;
  /** The agent of the trigger (CODEXK8S_AGENT), whose instructions open the prompt. */
  agent: string;
  /** Where the instructions are (CODEXK8S_AGENT_INSTRUCTIONS; the image's deploy/agent/instructions). */
  instructionsDir: string;
}

export class AgentRunError extends Error {
  override readonly name = 'AgentRunError';
}

const env = (name: string, fallback?: string): string => {
  const value = process.env[name]?.trim() || fallback;
  if (value === undefined) throw new AgentRunError(`${name} is not set`);
  return value;
};

// It names a file: nothing that could leave the instructions' folder.
function agentName(raw: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$/.test(raw)) throw new AgentRunError('CODEXK8S_AGENT must be an agent name (letters, digits, "_" and "-")');
  return raw;
}

function subjectOf(raw: string | undefined): AgentRunSettings['subject'] {
  const kind = raw?.trim() || 'issue';
  if (kind !== 'issue' && kind !== 'pull_request') throw new AgentRunError('CODEXK8S_SUBJECT_KIND must be issue or pull_request');
  return kind;
}

export function agentRunSettings(): AgentRunSettings {
  const issue = Number(env('CODEXK8S_ISSUE_NUMBER'));
  if (!Number.isSafeInteger(issue) || issue < 1) throw new AgentRunError('CODEXK8S_ISSUE_NUMBER must be an issue number');
  return {
    workspace: env('CODEXK8S_WORKSPACE', '/workspace'),
    repository: env('CODEXK8S_REPOSITORY'),
    cloneUrl: env('CODEXK8S_CLONE_URL', `https://github.com/${process.env.CODEXK8S_REPOSITORY ?? ''}.git`),
    issue,
    subject: subjectOf(process.env.CODEXK8S_SUBJECT_KIND),
    branch: process.env.CODEXK8S_BRANCH?.trim() || null,
    issueBodySha256: process.env.CODEXK8S_ISSUE_BODY_SHA256?.trim() || null,
    githubApiUrl: env('CODEXK8S_GITHUB_API_URL', 'https://api.github.com'),
    tokenFile: env('CODEXK8S_TOKEN_FILE', '/var/run/codex/repository/token'),
    learningMode: ['1', 'true', 'on'].includes((process.env.CODEXK8S_LEARNING_MODE ?? '').toLowerCase()),
    agent: agentName(env('CODEXK8S_AGENT', 'dev')),
    instructionsDir: env('CODEXK8S_AGENT_INSTRUCTIONS', join(projectRoot, 'deploy', 'agent', 'instructions')),
  };
}

// No system or global git configuration: HOME may be a directory the agent could write to.
const gitEnv = () => ({ ...process.env, GIT_TERMINAL_PROMPT: '0', GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null' });
const git = (cwd: string, ...args: string[]) => run('git', args, { cwd, env: gitEnv() });
/** The agent's outcome, written to the workspace when it ends: publish waits for it. */
const agentDone = (s: AgentRunSettings) => join(s.workspace, 'agent.done');
const baseCommitFile = (s: AgentRunSettings) => join(s.workspace, 'checkout.commit');
/** codex's last message (its summary, with the explanations learning mode asks for), for the pull request. */
const summaryFile = (s: AgentRunSettings) => join(s.workspace, 'agent.summary.md');
const shellQuote = (value: string) => `'${value.replace(/'/g, `'\\''`)}'`;
const repoDir = (s: AgentRunSettings) => join(s.workspace, 'repo');
const token = (s: AgentRunSettings) => (existsSync(s.tokenFile) ? readFileSync(s.tokenFile, 'utf8').trim() : '');
const github = (s: AgentRunSettings) => new Octokit({ baseUrl: s.githubApiUrl, auth: token(s) || undefined, log: { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} } });

/** A clone URL with the token for one git call: never written into the workspace's git config. */
function authenticated(s: AgentRunSettings): string {
  const t = token(s);
  if (!t || !/^https:\/\//.test(s.cloneUrl)) return s.cloneUrl;
  return s.cloneUrl.replace(/^https:\/\//, `https://x-access-token:${encodeURIComponent(t)}@`);
}

/**
 * The branch a run works on: `codex/issue-<n>` for an issue; for a pull request (a revise), its own
 * branch, which must live in this repository (a fork's branch is not ours to push to). Asked of
 * GitHub by checkout and again by publish, never read from the workspace, which the agent can write.
 */
async function branchOf(s: AgentRunSettings): Promise<string> {
  if (s.branch) return s.branch;
  if (s.subject === 'issue') return `codex/issue-${s.issue}`;
  const [o, n] = s.repository.split('/') as [string, string];
  const pull = (await github(s).rest.pulls.get({ owner: o, repo: n, pull_number: s.issue })).data;
  // By numeric id: a fork can carry the same name.
  if (pull.head.repo?.id !== pull.base.repo.id) throw new AgentRunError(`pull request #${s.issue} comes from a fork; a revise pushes only to this repository`);
  if (pull.state !== 'open') throw new AgentRunError(`pull request #${s.issue} is not open`);
  if (!/^(?!-)[A-Za-z0-9._\/-]{1,250}$/.test(pull.head.ref)) throw new AgentRunError(`pull request #${s.issue} has a branch name this runner does not take`);
  return pull.head.ref;
}

/**
 * checkout (holds the token): clones the repository into the workspace, checks out the run's
 * branch (where an earlier run or a person left it, or new from the default branch), and writes the
 * issue's text for the agent, but only if its body is the one that was labelled (the SHA-256
 * recorded on the run): text edited after the label never reaches the agent.
 */
export async function checkout(s: AgentRunSettings): Promise<void> {
  const branch = await branchOf(s);
  // git's own message may quote the URL, token and all: the reason says what failed, not git's words.
  await run('git', ['clone', '--quiet', authenticated(s), repoDir(s)], { env: gitEnv() }).catch(() => {
    throw new AgentRunError(`cloning ${s.repository} failed (does it exist, and may the repository's token read it?)`);
  });
  // The token must not stay in the workspace the agent shares: the remote is the plain URL again.
  await git(repoDir(s), 'remote', 'set-url', 'origin', s.cloneUrl);
  const pushed = await git(repoDir(s), 'rev-parse', '--verify', '--quiet', `refs/remotes/origin/${branch}`).then(() => true, () => false);
  await git(repoDir(s), 'checkout', '--quiet', '-B', branch, ...(pushed ? [`refs/remotes/origin/${branch}`] : []));
  // Where the agent starts from: publish pushes nothing when the agent committed nothing on top.
  writeFileSync(baseCommitFile(s), (await git(repoDir(s), 'rev-parse', 'HEAD')).stdout.trim());
  const [o, n] = s.repository.split('/') as [string, string];
  const issue = (await github(s).rest.issues.get({ owner: o, repo: n, issue_number: s.issue }).catch((error: { status?: number }) => {
    throw new AgentRunError(`reading #${s.issue} of ${s.repository} on GitHub failed (${error.status ?? 'no answer'})`);
  })).data;
  const body = issue.body ?? '';
  if (s.issueBodySha256 && createHash('sha256').update(body).digest('hex') !== s.issueBodySha256) {
    throw new AgentRunError('the issue was edited after it was labelled; label it again to run on the new text');
  }
  writeFileSync(join(s.workspace, 'issue.md'), `# ${issue.title}\n\n${body}\n`);
}

/** The agent's instructions for what was labelled: its own file, else the default one. */
export function instructionsOf(s: AgentRunSettings): string {
  const mode = s.subject === 'pull_request' ? 'revise' : 'run';
  const file = [`${s.agent}.${mode}.md`, `default.${mode}.md`].map((name) => join(s.instructionsDir, name)).find((f) => existsSync(f));
  if (!file) throw new AgentRunError(`no instructions for agent ${s.agent} (${s.agent}.${mode}.md or default.${mode}.md)`);
  return readFileSync(file, 'utf8').trim();
}

/** Who the agent's commits are by: its own, and the model's when it commits as it goes (it has no git configuration). */
const IDENTITY = { name: 'codex-k8s', email: 'codex-k8s@users.noreply.invalid' };
const identityEnv = { GIT_AUTHOR_NAME: IDENTITY.name, GIT_AUTHOR_EMAIL: IDENTITY.email, GIT_COMMITTER_NAME: IDENTITY.name, GIT_COMMITTER_EMAIL: IDENTITY.email };

const LEARNING = `\n\nLearning mode is on: for each decision, explain why this place, what it gives, which alternatives there were and why they are worse here.`;

/** agent (no GitHub credentials): runs `codex exec` on the issue's text, then commits what it changed. */
export async function agent(s: AgentRunSettings): Promise<void> {
  // The OpenAI key is a mounted file; it reaches codex's own environment only, never the Job's spec.
  const keyFile = process.env.CODEXK8S_OPENAI_KEY_FILE ?? '/var/run/codex/openai/key';
  const key = existsSync(keyFile) ? readFileSync(keyFile, 'utf8').trim() : undefined;
  // codex does not make its home, and keeps its session files there.
  if (process.env.CODEX_HOME) mkdirSync(process.env.CODEX_HOME, { recursive: true });
  try {
    const prompt = `${instructionsOf(s)}\n\n${readFileSync(join(s.workspace, 'issue.md'), 'utf8')}${s.learningMode ? LEARNING : ''}`;
    await codexExec(['exec', ...CODEX_EXEC_FLAGS, '--output-last-message', summaryFile(s), '--', prompt], { cwd: repoDir(s), env: { ...process.env, ...identityEnv, ...(key ? { OPENAI_API_KEY: key } : {}) } });
    await git(repoDir(s), 'add', '-A');
    const { stdout } = await git(repoDir(s), 'status', '--porcelain');
    if (stdout.trim()) await git(repoDir(s), '-c', `user.name=${IDENTITY.name}`, '-c', `user.email=${IDENTITY.email}`, 'commit', '--quiet', '-m', `codex: ${s.subject === 'pull_request' ? 'revise pull request' : 'issue'} #${s.issue}`);
    writeFileSync(agentDone(s), JSON.stringify({ ok: true }));
  } catch (error) {
    writeFileSync(agentDone(s), JSON.stringify({ ok: false, error: error instanceof AgentRunError ? error.message : 'the agent step failed' }));
    throw error;
  }
}

/**
 * The pod is the sandbox (no token, no service account, egress to 443 only, restricted Pod Security).
 * codex's own sandbox builds on kernel features (user namespaces, Landlock) that a restricted pod
 * may not offer, and where it cannot start, every command the model runs fails. No session files are kept.
 */
const CODEX_EXEC_FLAGS = ['--dangerously-bypass-approvals-and-sandbox', '--ephemeral', '--color', 'never'];

/**
 * Runs codex with its output in the container's log; stdin is closed, or codex waits for more prompt.
 * A SIGTERM to the step (the kubelet stopping the pod: a cancel, the deadline) stops codex too:
 * left alone it would work on, and commit, after publish has pushed the checkpoint. (As a
 * container's PID 1, Node.js would not even stop itself on SIGTERM.)
 */
function codexExec(args: string[], options: { cwd: string; env: NodeJS.ProcessEnv }): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('codex', args, { ...options, stdio: ['ignore', 'inherit', 'inherit'] });
    const stop = () => child.kill('SIGTERM');
    process.once('SIGTERM', stop);
    child.once('error', (error: NodeJS.ErrnoException) => reject(new AgentRunError(error.code === 'ENOENT' ? 'codex is not on PATH' : `codex did not start: ${error.code ?? 'unknown'}`)));
    child.once('exit', (code, signal) => {
      process.removeListener('SIGTERM', stop);
      // Not the command line in the message: it is the whole prompt.
      if (code === 0) resolve();
      else reject(new AgentRunError(`codex exited with ${code ?? signal}`));
    });
  });
}

/** Whether the agent has ended, and how: null while it runs. */
export function agentOutcome(s: AgentRunSettings): { ok: boolean; error?: string } | null {
  if (!existsSync(agentDone(s))) return null;
  try {
    const outcome = JSON.parse(readFileSync(agentDone(s), 'utf8')) as { ok?: unknown; error?: unknown };
    return { ok: outcome.ok === true, ...(typeof outcome.error === 'string' ? { error: outcome.error.slice(0, 200) } : {}) };
  } catch {
    return { ok: false, error: 'the agent left an unreadable outcome' };
  }
}

/**
 * What the agent said last (codex's final message: its summary, and the explanations learning mode
 * asks for), for the pull request; capped, and with e-mails and token-shaped strings redacted, as
 * the agent wrote it where it could also have written anything else.
 */
function agentSummary(s: AgentRunSettings): string {
  if (!existsSync(summaryFile(s))) return '';
  const text = readFileSync(summaryFile(s), 'utf8').trim();
  return scrubText(text.length > 20_000 ? `${text.slice(0, 20_000)}\n\n(cut at 20,000 characters)` : text);
}

export interface PublishResult {
  branch: string;
  commit: string;
  pullRequest: number | null;
  checkpoint: boolean;
}

/**
 * publish (holds the token, another user): pushes the branch and opens the pull request, or updates
 * the open one for the branch (never a second). As a checkpoint (on SIGTERM: a cancel, the deadline)
 * it pushes what the agent committed so far and says so.
 */
export async function publish(s: AgentRunSettings, options: { checkpoint?: boolean } = {}): Promise<PublishResult> {
  // The workspace's repository is the agent's: its hooks and configuration (a pushInsteadOf to
  // elsewhere, an fsmonitor command) must never run where the token is. So its commits are fetched,
  // as data, into a repository of publish's own (upload-pack runs no hook and ignores a repository's
  // packObjectsHook), and pushed from there. The agent's files belong to another user: git needs
  // that one repository named as safe, for that one call.
  const own = mkdtempSync(join(tmpdir(), 'codexk8s-publish-'));
  try {
    await git(own, 'init', '--quiet', '--bare');
    const agentGitDir = join(repoDir(s), '.git');
    await git(own, 'fetch', '--quiet', '--no-tags', `--upload-pack=git -c safe.directory=${shellQuote(agentGitDir)} upload-pack`, repoDir(s), `+HEAD:refs/agent/head`);
    return await pushAndPropose(s, own, options);
  } finally {
    rmSync(own, { recursive: true, force: true });
  }
}

async function pushAndPropose(s: AgentRunSettings, own: string, options: { checkpoint?: boolean }): Promise<PublishResult> {
  const commit = (await git(own, 'rev-parse', 'refs/agent/head')).stdout.trim();
  const base = existsSync(baseCommitFile(s)) ? readFileSync(baseCommitFile(s), 'utf8').trim() : '';
  const branch = await branchOf(s);
  const checkpoint = options.checkpoint ?? false;
  // Nothing on top of the checkout: no branch to push and no pull request to open.
  if (commit === base) return { branch, commit, pullRequest: null, checkpoint };
  // Never forced: the agent's commits go on top of the branch as checkout found it. Had someone
  // pushed to it meanwhile, git refuses, and the run fails rather than drop their commits.
  await git(own, 'push', '--quiet', authenticated(s), `${commit}:refs/heads/${branch}`).catch((error: unknown) => {
    const stderr = String((error as { stderr?: unknown }).stderr ?? '');
    throw new AgentRunError(/non-fast-forward|fetch first|rejected/.test(stderr) ? `${branch} moved on GitHub while the agent worked; nothing was pushed` : 'git push failed');
  });
  const [o, n] = s.repository.split('/') as [string, string];
  const client = github(s);
  const summary = agentSummary(s);
  const stopped = checkpoint ? 'A checkpoint: the run was stopped (canceled or past its deadline) before the agent finished' : '';
  // A revise leaves the person's pull request as they wrote it (the run's result names it): what
  // the agent says, and a checkpoint, go in a comment.
  if (s.subject === 'pull_request') {
    const said = [stopped && `${stopped}; ${commit.slice(0, 12)} is what it had committed.`, summary].filter(Boolean).join('\n\n');
    if (said) await client.rest.issues.createComment({ owner: o, repo: n, issue_number: s.issue, body: said });
    return { branch, commit, pullRequest: s.issue, checkpoint };
  }
  const open = await client.rest.pulls.list({ owner: o, repo: n, head: `${o}:${branch}`, state: 'open' });
  const title = `${options.checkpoint ? '[checkpoint] ' : ''}codex: issue #${s.issue}`;
  const body = [`Resolves #${s.issue}.`, stopped && `${stopped}.`, summary].filter(Boolean).join('\n\n');
  const pull = open.data[0]
    ? (await client.rest.pulls.update({ owner: o, repo: n, pull_number: open.data[0].number, title, body })).data
    : (await client.rest.pulls.create({ owner: o, repo: n, head: branch, base: (await client.rest.repos.get({ owner: o, repo: n })).data.default_branch || 'main', title, body })).data;
  return { branch, commit, pullRequest: pull.number, checkpoint };
}
