import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { githubDirectory, GithubError } from '../adapters/github/directory.js';
import { startFakeGithub, type FakeGithub } from './support/fake-github.js';

// The GitHub repository provider through the real client (@octokit/rest with its throttling and
// retry plugins) against the local fake, which fails on request the ways GitHub does.
describe('the GitHub repository provider', () => {
  let github: FakeGithub;
  const token = `ghp_${randomBytes(18).toString('hex')}`;
  const asked = (path: string) => github.requests.filter((r) => r.path === path);

  before(async () => {
    github = await startFakeGithub();
    github.addRepository({ id: 7001, owner: 'octo', name: 'private', token });
    github.addRepository({ id: 7002, owner: 'octo', name: 'public' });
    github.addUser({ id: 101, login: 'ada' });
  });
  after(() => github.close());

  it('is the provider of kind github, and finds a repository by the numeric id its token sees', async () => {
    const provider = githubDirectory(github.url);
    assert.equal(provider.kind, 'github');
    assert.deepEqual(await provider.find('Octo', 'Private', token), { id: 7001, owner: 'octo', name: 'private' });
    assert.deepEqual(await provider.find('octo', 'public', null), { id: 7002, owner: 'octo', name: 'public' });
    assert.deepEqual(await provider.user('ada'), { id: 101, login: 'ada' });
  });

  it('answers undefined for a repository that does not exist or that the token cannot see (404)', async () => {
    const provider = githubDirectory(github.url);
    assert.equal(await provider.find('octo', 'nowhere', token), undefined);
    assert.equal(await provider.find('octo', 'private', 'ghp_someone_elses'), undefined);
    assert.equal(await provider.find('octo', 'private', null), undefined);
  });

  it('waits out a rate limit for as long as retry-after says, retries a bad gateway, and still finds the repository', async () => {
    const path = '/repos/octo/private';
    const before = asked(path).length;
    github.failNext('rate_limit', 'bad_gateway');
    assert.deepEqual(await githubDirectory(github.url).find('octo', 'private', token), { id: 7001, owner: 'octo', name: 'private' });
    const tries = asked(path).slice(before);
    assert.equal(tries.length, 3, 'rate limited, bad gateway, found');
    assert.ok(tries[1]!.at - tries[0]!.at >= 950, `waited ${tries[1]!.at - tries[0]!.at} ms after retry-after: 1`);
  });

  it('waits for the reset of a used-up quota (x-ratelimit-reset)', async () => {
    const path = '/repos/octo/public';
    const before = asked(path).length;
    github.failNext('primary_rate_limit');
    assert.deepEqual(await githubDirectory(github.url).find('octo', 'public', null), { id: 7002, owner: 'octo', name: 'public' });
    assert.equal(asked(path).length - before, 2);
  });

  it('fails clearly, never with the token, on refused credentials or a rate limit that holds', async () => {
    const provider = githubDirectory(github.url);
    github.failNext('unauthorized');
    const refused = await provider.find('octo', 'private', token).then(() => assert.fail('found'), (e: unknown) => e);
    assert.ok(refused instanceof GithubError);
    assert.equal(refused.message, 'GitHub refused the token while looking up octo/private (401: bad or expired credentials)');

    const before = asked('/repos/octo/private').length;
    github.failNext('rate_limit', 'rate_limit', 'rate_limit');
    const limited = await provider.find('octo', 'private', token).then(() => assert.fail('found'), (e: unknown) => e);
    assert.ok(limited instanceof GithubError);
    assert.match(limited.message, /^GitHub's rate limit held while looking up octo\/private, also after 2 waits/);
    assert.equal(asked('/repos/octo/private').length - before, 3, 'a bounded number of retries');
    for (const e of [refused, limited]) assert.ok(!e.message.includes(token) && !String(e.stack).includes(token));
  });
});
