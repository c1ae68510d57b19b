import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

interface FakeRepository {
  id: number;
  owner: string;
  name: string;
  /** A private repository is shown only to this token. */
  token?: string;
}

/**
 * A local fake of the GitHub REST API endpoints the platform asks (`GET /repos/{owner}/{repo}`,
 * `GET /users/{login}`), for the real @octokit/rest client. Names are matched case-insensitively,
 * as GitHub does; a private repository answers 404 to any other token, as GitHub does.
 */
export async function startFakeGithub() {
  const repositories: FakeRepository[] = [];
  const users: { id: number; login: string; type: string }[] = [];
  const requests: { method: string; path: string; authorization: string | undefined }[] = [];
  const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

  const answer = (req: IncomingMessage): [number, unknown] => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const token = /^(?:token|bearer) (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
    let m = /^\/repos\/([^/]+)\/([^/]+)$/.exec(path);
    if (req.method === 'GET' && m) {
      const repo = repositories.find((r) => same(r.owner, m![1]!) && same(r.name, m![2]!));
      if (!repo || (repo.token !== undefined && repo.token !== token)) return [404, { message: 'Not Found' }];
      return [200, { id: repo.id, name: repo.name, full_name: `${repo.owner}/${repo.name}`, private: repo.token !== undefined, owner: { login: repo.owner, id: 1, type: 'User' } }];
    }
    m = /^\/users\/([^/]+)$/.exec(path);
    if (req.method === 'GET' && m) {
      const user = users.find((u) => same(u.login, m![1]!));
      return user ? [200, user] : [404, { message: 'Not Found' }];
    }
    return [404, { message: 'Not Found' }];
  };

  const server: Server = createServer((req, res) => {
    requests.push({ method: req.method ?? '', path: req.url ?? '', authorization: req.headers.authorization });
    const [status, body] = answer(req);
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
    res.end(JSON.stringify(body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    requests,
    addRepository(repo: FakeRepository) {
      repositories.push(repo);
    },
    /** GitHub keeps the id when a repository is renamed or transferred. */
    renameRepository(id: number, owner: string, name: string) {
      const repo = repositories.find((r) => r.id === id)!;
      repo.owner = owner;
      repo.name = name;
    },
    addUser(user: { id: number; login: string; type?: string }) {
      users.push({ type: 'User', ...user });
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export type FakeGithub = Awaited<ReturnType<typeof startFakeGithub>>;
