import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fakeGithubOAuth, type FakeAnswer } from './fake-github-oauth.js';

/**
 * Failures GitHub answers now and then, each for one request: a secondary rate limit (429 with
 * `retry-after: 1`), the primary one (403, quota used up until `x-ratelimit-reset`, a second away),
 * a bad gateway (502), refused credentials (401), a token without the permission (403), and a
 * connection dropped before any answer. Their bodies echo the request's credentials,
 * as a careless proxy might, so a test can prove no answer's text reaches an error message.
 */
export type FakeFailure = 'rate_limit' | 'primary_rate_limit' | 'bad_gateway' | 'unauthorized' | 'forbidden' | 'dropped';

function failure(kind: Exclude<FakeFailure, 'dropped'>, authorization: string): [number, unknown, Record<string, string>] {
  switch (kind) {
    case 'rate_limit':
      return [429, { message: `You have exceeded a secondary rate limit (${authorization})` }, { 'retry-after': '1' }];
    case 'primary_rate_limit':
      return [403, { message: `API rate limit exceeded (${authorization})` }, { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(Math.ceil(Date.now() / 1000) + 1) }];
    case 'bad_gateway':
      return [502, { message: `upstream failed for ${authorization}` }, {}];
    case 'unauthorized':
      return [401, { message: `Bad credentials: ${authorization}` }, {}];
    case 'forbidden':
      return [403, { message: `Resource not accessible by personal access token (${authorization})` }, {}];
  }
}

interface FakeRepository {
  id: number;
  owner: string;
  name: string;
  /** A private repository is shown only to this token. */
  token?: string;
}

export interface FakeRequest {
  method: string;
  path: string;
  authorization: string | undefined;
  accept: string | undefined;
  contentType: string | undefined;
  /** The parsed body (JSON or form), once it has been read. */
  body: Record<string, string>;
}

/** A body as GitHub takes it: form-encoded or JSON; undefined when it cannot be parsed. */
function parseBody(raw: string, contentType: string | undefined): Record<string, string> | undefined {
  if (!raw) return {};
  if (/application\/x-www-form-urlencoded/i.test(contentType ?? '')) return Object.fromEntries(new URLSearchParams(raw));
  try {
    return JSON.parse(raw) as Record<string, string>;
  } catch {
    return undefined;
  }
}

/**
 * A local fake of the GitHub REST API endpoints the platform asks (`GET /repos/{owner}/{repo}`,
 * `GET /users/{login}`, and the OAuth web flow: see fake-github-oauth.ts), for the real Octokit
 * clients, failing on request (`failNext`). Names are matched case-insensitively, as GitHub does; a
 * private repository answers 404 to any other token, as GitHub does. `now` is the clock OAuth codes expire by.
 */
export async function startFakeGithub(options: { now?: () => number } = {}) {
  const repositories: FakeRepository[] = [];
  const users: { id: number; login: string; type: string }[] = [];
  const requests: (FakeRequest & { at: number })[] = [];
  const failures: FakeFailure[] = [];
  const oauth = fakeGithubOAuth(options.now ?? Date.now);
  const issues = new Map<string, { number: number; title: string; body: string }>();
  /** Comments posted, by `owner/name#number`. */
  const comments: { on: string; body: string }[] = [];
  // head and base are branch names; headRepositoryId, when set, is the fork the head branch lives in.
  const pulls: { number: number; repository: string; head: string; base: string; title: string; body: string; state: 'open' | 'closed'; headRepositoryId?: number }[] = [];
  const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

  const answer = (req: IncomingMessage, input: Record<string, string>): FakeAnswer => {
    const url = new URL(req.url ?? '/', 'http://x');
    const path = decodeURIComponent(url.pathname);
    const oauthAnswer = oauth.answer(req.method ?? '', path, req.headers, input);
    if (oauthAnswer) return oauthAnswer;
    const comment = /^\/repos\/([^/]+)\/([^/]+)\/issues\/(\d+)\/comments$/.exec(path);
    if (req.method === 'POST' && comment) {
      const on = `${comment[1]!.toLowerCase()}/${comment[2]!.toLowerCase()}#${comment[3]}`;
      if (!issues.has(on)) return [404, { message: 'Not Found' }];
      comments.push({ on, body: input.body ?? '' });
      return [201, { id: comments.length, body: input.body ?? '' }];
    }
    const issue = /^\/repos\/([^/]+)\/([^/]+)\/issues\/(\d+)$/.exec(path);
    if (req.method === 'GET' && issue) {
      const found = issues.get(`${issue[1]!.toLowerCase()}/${issue[2]!.toLowerCase()}#${issue[3]}`);
      return found ? [200, { ...found, state: 'open' }] : [404, { message: 'Not Found' }];
    }
    const pullsPath = /^\/repos\/([^/]+)\/([^/]+)\/pulls(?:\/(\d+))?$/.exec(path);
    if (pullsPath) {
      const repository = `${pullsPath[1]!.toLowerCase()}/${pullsPath[2]!.toLowerCase()}`;
      if (req.method === 'GET' && !pullsPath[3]) {
        const head = url.searchParams.get('head')?.split(':').at(-1);
        return [200, pulls.filter((p) => p.repository === repository && p.state === (url.searchParams.get('state') ?? 'open') && (!head || p.head === head))];
      }
      if (req.method === 'POST' && !pullsPath[3]) {
        if (pulls.some((p) => p.repository === repository && p.head === input.head && p.state === 'open')) return [422, { message: 'A pull request already exists' }];
        const pull = { number: 100 + pulls.length, repository, head: input.head!, base: input.base!, title: input.title!, body: input.body ?? '', state: 'open' as const };
        pulls.push(pull);
        return [201, pull];
      }
      if (req.method === 'GET' && pullsPath[3]) {
        const pull = pulls.find((p) => p.repository === repository && p.number === Number(pullsPath[3]));
        const repo = repositories.find((r) => `${r.owner}/${r.name}`.toLowerCase() === repository);
        if (!pull || !repo) return [404, { message: 'Not Found' }];
        // As GitHub shapes it: each side names its branch and its repository (a fork's head is another one).
        const side = (ref: string, id: number) => ({ ref, repo: { id, full_name: id === repo.id ? `${repo.owner}/${repo.name}` : `someone/${repo.name}` } });
        return [200, { number: pull.number, state: pull.state, title: pull.title, body: pull.body, head: side(pull.head, pull.headRepositoryId ?? repo.id), base: side(pull.base, repo.id) }];
      }
      if (req.method === 'PATCH' && pullsPath[3]) {
        const pull = pulls.find((p) => p.repository === repository && p.number === Number(pullsPath[3]));
        if (!pull) return [404, { message: 'Not Found' }];
        Object.assign(pull, { ...(input.title ? { title: input.title } : {}), ...(input.body !== undefined ? { body: input.body } : {}) });
        return [200, pull];
      }
    }
    const token = /^(?:token|bearer) (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
    let m = /^\/repos\/([^/]+)\/([^/]+)$/.exec(path);
    if (req.method === 'GET' && m) {
      const repo = repositories.find((r) => same(r.owner, m![1]!) && same(r.name, m![2]!));
      if (!repo || (repo.token !== undefined && repo.token !== token)) return [404, { message: 'Not Found' }];
      return [200, { id: repo.id, name: repo.name, full_name: `${repo.owner}/${repo.name}`, private: repo.token !== undefined, default_branch: 'main', owner: { login: repo.owner, id: 1, type: 'User' } }];
    }
    m = /^\/users\/([^/]+)$/.exec(path);
    if (req.method === 'GET' && m) {
      const user = users.find((u) => same(u.login, m![1]!));
      return user ? [200, user] : [404, { message: 'Not Found' }];
    }
    return [404, { message: 'Not Found' }];
  };

  const server: Server = createServer((req, res) => {
    const { authorization, accept, 'content-type': contentType } = req.headers;
    const recorded = { method: req.method ?? '', path: req.url ?? '', authorization, accept, contentType, body: {}, at: Date.now() };
    requests.push(recorded);
    let raw = '';
    req.on('data', (chunk) => (raw += chunk));
    req.on('end', () => {
      const failing = failures.shift();
      if (failing === 'dropped') {
        req.socket.destroy();
        return;
      }
      if (failing) {
        const [status, body, headers] = failure(failing, authorization ?? '');
        res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
        res.end(JSON.stringify(body));
        return;
      }
      const input = parseBody(raw, contentType);
      if (input) recorded.body = input;
      const [status, body, format] = input ? answer(req, input) : [400, { message: 'Problems parsing JSON' }];
      if (format === 'form') {
        res.writeHead(status, { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' });
        res.end(new URLSearchParams(body as Record<string, string>).toString());
        return;
      }
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
      res.end(JSON.stringify(body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    requests,
    /** The next requests fail like this, one failure each, whatever they ask; then answers are normal again. */
    failNext(...kinds: FakeFailure[]) {
      failures.push(...kinds);
    },
    addRepository(repo: FakeRepository) {
      repositories.push(repo);
    },
    /** GitHub keeps the id when a repository is renamed or transferred. */
    renameRepository(id: number, owner: string, name: string) {
      const repo = repositories.find((r) => r.id === id)!;
      repo.owner = owner;
      repo.name = name;
    },
    addIssue(repository: string, issue: { number: number; title: string; body: string }) {
      issues.set(`${repository.toLowerCase()}#${issue.number}`, issue);
    },
    pulls,
    comments,
    /** A pull request someone opened (a pull request is an issue too, as GitHub's API has it). */
    addPull(repository: string, pull: { number: number; title: string; body: string; head: string; base?: string; headRepositoryId?: number }) {
      issues.set(`${repository.toLowerCase()}#${pull.number}`, { number: pull.number, title: pull.title, body: pull.body });
      pulls.push({ base: 'main', ...pull, repository: repository.toLowerCase(), state: 'open' });
    },
    addUser(user: { id: number; login: string; type?: string }) {
      users.push({ type: 'User', ...user });
    },
    /** The OAuth app the platform signs in with (CODEXK8S_GITHUB_OAUTH_CLIENT_ID/_SECRET). */
    oauthApp: oauth.oauthApp,
    /** A person approves the app at an authorize URL: answers the callback URL with a one-time code and the state. */
    approve: oauth.approve,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export type FakeGithub = Awaited<ReturnType<typeof startFakeGithub>>;
