import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import { githubOAuth, OAuthExchangeError, OAuthIdentityError } from '../adapters/github/oauth.js';
import { codeChallengeOf, newCodeVerifier } from '../adapters/github/pkce.js';
import { startFakeGithub, type FakeGithub } from './support/fake-github.js';
import type { FakeOAuthUser } from './support/fake-github-oauth.js';

const clientId = 'Iv1.0123456789abcdef';
const clientSecret = `secret_${randomBytes(20).toString('hex')}`;
const redirectUri = 'https://codex.example.test/api/v1/auth/github/callback';
const ada: FakeOAuthUser = {
  id: 4242,
  login: 'ada',
  emails: [
    { email: ' Ada@Example.COM ', verified: true, primary: true },
    { email: 'ada@work.example', verified: true },
    { email: 'not-yet@example.com', verified: false },
  ],
};

let clock = Date.now();
let github: FakeGithub;
before(async () => {
  github = await startFakeGithub({ now: () => clock });
  github.oauthApp({ clientId, clientSecret });
});
after(() => github.close());

const client = (overrides: { clientSecret?: string; oauthUrl?: string; apiUrl?: string; timeoutMs?: number } = {}) =>
  githubOAuth({ oauthUrl: github.url, apiUrl: github.url, clientId, clientSecret, ...overrides });

/** Everything that must never show in an error: collected as the tests make them. */
const secrets = new Set<string>([clientSecret]);
const errors: Error[] = [];

/** Runs the browser's part: an authorize URL, the person approves, the callback's code and state. */
function approved(user = ada, uri = redirectUri) {
  const verifier = newCodeVerifier();
  const state = randomBytes(16).toString('base64url');
  const url = client().authorizeUrl({ state, codeChallenge: codeChallengeOf(verifier), redirectUri: uri });
  const callback = new URL(github.approve(url, user));
  const code = callback.searchParams.get('code')!;
  secrets.add(verifier).add(code);
  return { verifier, state, code, callback, url };
}

async function refused<E extends Error>(kind: new (...args: never[]) => E, call: () => Promise<unknown>): Promise<E> {
  const error = await call().then(
    () => assert.fail('expected a refusal'),
    (e: unknown) => e,
  );
  assert.ok(error instanceof kind, `expected ${kind.name}, got ${inspect(error)}`);
  errors.push(error);
  return error;
}

/** A server on 127.0.0.1 that answers every request with `handle` (or never, when it does nothing). */
async function stub(handle: (res: import('node:http').ServerResponse) => void): Promise<{ url: string; close: () => Promise<void> }> {
  const server: Server = createServer((req, res) => {
    req.resume();
    handle(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

describe('GitHub OAuth web flow with PKCE', () => {
  it('authorize URL → approval → code exchange with the verifier → identity', async () => {
    const { verifier, state, code, callback, url } = approved();
    const challenge = codeChallengeOf(verifier);
    assert.equal(
      url,
      `${github.url}/login/oauth/authorize?client_id=${encodeURIComponent(clientId)}&redirect_uri=${encodeURIComponent(redirectUri)}` +
        `&state=${state}&code_challenge=${challenge}&code_challenge_method=S256&scope=read:user%20user:email`,
    );
    assert.equal(`${callback.origin}${callback.pathname}`, redirectUri);
    assert.equal(callback.searchParams.get('state'), state, 'the state comes back as it was sent');

    const token = await client().exchangeCode({ code, codeVerifier: verifier, redirectUri });
    secrets.add(token);
    assert.match(token, /^gho_/);
    const sent = github.requests.findLast((r) => r.path === '/login/oauth/access_token')!;
    assert.equal(sent.method, 'POST');
    assert.equal(sent.accept, 'application/json');
    assert.deepEqual(sent.body, { client_id: clientId, client_secret: clientSecret, code, redirect_uri: redirectUri, code_verifier: verifier });

    const who = await client().identity(token);
    assert.deepEqual(who, { id: 4242, login: 'ada', verifiedEmails: ['ada@example.com', 'ada@work.example'] }, 'verified only, trimmed and lower-cased');
    const asked = github.requests.filter((r) => r.path.startsWith('/user'));
    assert.deepEqual(asked.map((r) => r.path.split('?')[0]).sort(), ['/user', '/user/emails']);
    assert.ok(asked.every((r) => r.authorization === `token ${token}`), 'both asked with the access token');
  });

  it('an e-mail GitHub has not verified is left out, even the only one', async () => {
    const { code, verifier } = approved({ id: 7, login: 'eve', emails: [{ email: 'Eve@Example.com', verified: false, primary: true }] });
    const token = await client().exchangeCode({ code, codeVerifier: verifier, redirectUri });
    secrets.add(token);
    assert.deepEqual(await client().identity(token), { id: 7, login: 'eve', verifiedEmails: [] });
  });

  it('a wrong verifier is refused as bad_verification_code, and burns the code', async () => {
    const { code, verifier } = approved();
    const wrong = newCodeVerifier();
    secrets.add(wrong);
    const error = await refused(OAuthExchangeError, () => client().exchangeCode({ code, codeVerifier: wrong, redirectUri }));
    assert.equal(error.reason, 'bad_verification_code');
    assert.equal(error.message, 'GitHub refused the code exchange (bad_verification_code)');
    const retry = await refused(OAuthExchangeError, () => client().exchangeCode({ code, codeVerifier: verifier, redirectUri }));
    assert.equal(retry.reason, 'bad_verification_code');
  });

  it('a code is good once: a replay is refused', async () => {
    const { code, verifier } = approved();
    secrets.add(await client().exchangeCode({ code, codeVerifier: verifier, redirectUri }));
    const error = await refused(OAuthExchangeError, () => client().exchangeCode({ code, codeVerifier: verifier, redirectUri }));
    assert.equal(error.reason, 'bad_verification_code');
  });

  it('a code expires after 10 minutes', async () => {
    const { code, verifier } = approved();
    clock += 10 * 60_000 + 1;
    try {
      const error = await refused(OAuthExchangeError, () => client().exchangeCode({ code, codeVerifier: verifier, redirectUri }));
      assert.equal(error.reason, 'bad_verification_code');
    } finally {
      clock -= 10 * 60_000 + 1;
    }
  });

  it('a wrong client secret is refused as incorrect_client_credentials', async () => {
    const { code, verifier } = approved();
    const wrongSecret = `secret_${randomBytes(20).toString('hex')}`;
    secrets.add(wrongSecret);
    const error = await refused(OAuthExchangeError, () => client({ clientSecret: wrongSecret }).exchangeCode({ code, codeVerifier: verifier, redirectUri }));
    assert.equal(error.reason, 'incorrect_client_credentials');
  });

  it('a redirect_uri other than the authorize one is refused as redirect_uri_mismatch', async () => {
    const { code, verifier } = approved();
    const error = await refused(OAuthExchangeError, () =>
      client().exchangeCode({ code, codeVerifier: verifier, redirectUri: 'https://elsewhere.example.test/callback' }),
    );
    assert.equal(error.reason, 'redirect_uri_mismatch');
  });

  it('an unknown or revoked access token is refused with 401', async () => {
    const bogus = `gho_${randomBytes(18).toString('base64url')}`;
    secrets.add(bogus);
    const error = await refused(OAuthIdentityError, () => client().identity(bogus));
    assert.equal(error.status, 401);
    assert.equal(error.message, 'GitHub refused the access token (401)');
  });

  it('an error status, a hang or no server at all become typed errors', async () => {
    const failing = await stub((res) => res.writeHead(502, { 'content-type': 'text/html' }).end('<h1>Bad gateway</h1>'));
    const silent = await stub(() => {});
    const gone = await stub(() => {});
    await gone.close();
    try {
      const { code, verifier } = approved();
      const args = { code, codeVerifier: verifier, redirectUri };
      assert.equal((await refused(OAuthExchangeError, () => client({ oauthUrl: failing.url }).exchangeCode(args))).reason, 'http_502');
      assert.equal((await refused(OAuthExchangeError, () => client({ oauthUrl: silent.url, timeoutMs: 300 }).exchangeCode(args))).reason, 'timeout');
      assert.equal((await refused(OAuthExchangeError, () => client({ oauthUrl: gone.url }).exchangeCode(args))).reason, 'unreachable');

      const token = `gho_${randomBytes(18).toString('base64url')}`;
      secrets.add(token);
      assert.equal((await refused(OAuthIdentityError, () => client({ apiUrl: failing.url }).identity(token))).status, 502);
      assert.match((await refused(OAuthIdentityError, () => client({ apiUrl: silent.url, timeoutMs: 300 }).identity(token))).message, /within 300 ms/);
      assert.match((await refused(OAuthIdentityError, () => client({ apiUrl: gone.url }).identity(token))).message, /could not be reached/);
    } finally {
      await Promise.all([failing.close(), silent.close()]);
    }
  });

  it('no error holds the code, the verifier, the client secret or a token, anywhere in it', () => {
    assert.ok(errors.length >= 10, `errors were collected (${errors.length})`);
    for (const error of errors) {
      const everything = `${error.message}\n${error.stack}\n${inspect(error, { depth: 10, showHidden: true })}\n${JSON.stringify(error)}`;
      for (const secret of secrets) assert.ok(!everything.includes(secret), `${error.name} (${error.message}) leaks a secret`);
      assert.equal(error.cause, undefined, 'no cause: Octokit\'s error carries the request body');
    }
  });
});

describe('the fake GitHub OAuth app', () => {
  it('refuses to approve another app, or a challenge method other than S256', () => {
    const url = client().authorizeUrl({ state: 's', codeChallenge: codeChallengeOf(newCodeVerifier()), redirectUri });
    assert.throws(() => github.approve(url.replace(`client_id=${encodeURIComponent(clientId)}`, 'client_id=other'), ada), /unknown client_id/);
    assert.throws(() => github.approve(url.replace('code_challenge_method=S256', 'code_challenge_method=plain'), ada), /must be S256/);
  });

  it('takes a form body and answers form-encoded unless JSON is asked for, as GitHub does', async () => {
    const { code, verifier } = approved();
    const form = (extra: Record<string, string>) =>
      fetch(`${github.url}/login/oauth/access_token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ client_id: clientId, client_secret: clientSecret, redirect_uri: redirectUri, ...extra }),
      });
    const granted = await form({ code, code_verifier: verifier });
    assert.equal(granted.status, 200);
    assert.match(granted.headers.get('content-type')!, /x-www-form-urlencoded/);
    const answer = new URLSearchParams(await granted.text());
    assert.match(answer.get('access_token')!, /^gho_/);
    assert.equal(answer.get('token_type'), 'bearer');
    assert.equal(answer.get('scope'), 'read:user,user:email');
    const replay = new URLSearchParams(await (await form({ code, code_verifier: verifier })).text());
    assert.equal(replay.get('error'), 'bad_verification_code');
  });

  it('refuses /user without a token', async () => {
    const res = await fetch(`${github.url}/user`);
    assert.equal(res.status, 401);
  });

  it('authorizeUrl refuses a challenge that is not S256 base64url', () => {
    assert.throws(() => client().authorizeUrl({ state: 's', codeChallenge: 'a'.repeat(64), redirectUri }), /base64url\(sha256/);
  });
});
