import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { DomainEvent } from '../../domain/events.js';
import { decideProject, DomainError, evolveProject, initialProject, type ProjectCommand } from '../../domain/projects/project.js';
import { decideUser, evolveUser, initialUser } from '../../domain/users/user.js';

const P = '00000000-0000-4000-8000-000000000001';
const U = '00000000-0000-4000-8000-000000000002';
const now = '2026-11-27T10:00:00.000Z';
const created = { type: 'ProjectCreated', data: { projectId: P, key: 'alpha', name: 'Alpha', createdAt: now } } as DomainEvent;
const added = (role: 'read' | 'read_write' | 'admin') => ({ type: 'MemberAdded', data: { projectId: P, userId: U, role, addedAt: now } }) as DomainEvent;
const fold = (events: DomainEvent[]) => events.reduce(evolveProject, initialProject);

// given (past events) / when (command) / then (new events, or the error code)
const table: [string, DomainEvent[], ProjectCommand, DomainEvent[] | DomainError['code']][] = [
  ['creates a project', [], { type: 'CreateProject', projectId: P, key: 'alpha', name: 'Alpha', now }, [created]],
  ['refuses a second creation', [created], { type: 'CreateProject', projectId: P, key: 'alpha', name: 'Alpha', now }, 'conflict'],
  ['refuses a malformed key', [], { type: 'CreateProject', projectId: P, key: '-x', name: 'X', now }, 'invalid_argument'],
  ['adds a member', [created], { type: 'AddMember', userId: U, role: 'read', now }, [added('read')]],
  ['the same role again changes nothing', [created, added('read')], { type: 'AddMember', userId: U, role: 'read', now }, []],
  ['another role changes it', [created, added('read')], { type: 'AddMember', userId: U, role: 'admin', now }, [{ type: 'MemberRoleChanged', data: { projectId: P, userId: U, role: 'admin' } } as DomainEvent]],
  ['no members in a project that does not exist', [], { type: 'AddMember', userId: U, role: 'read', now }, 'not_found'],
  ['no repositories in a deleted project', [created, { type: 'ProjectDeleted', data: { projectId: P, deletedAt: now } } as DomainEvent], { type: 'ConnectRepository', repositoryId: U, owner: 'o', name: 'n', tokenCiphertext: null, now }, 'not_found'],
];

describe('the project decider', () => {
  for (const [name, given, when, then] of table) {
    it(name, () => {
      if (typeof then === 'string') {
        assert.throws(() => decideProject(when, fold(given)), (e: unknown) => e instanceof DomainError && e.code === then);
      } else {
        assert.deepEqual(decideProject(when, fold(given)), then);
      }
    });
  }
});

describe('the user decider', () => {
  const allow = { type: 'AllowUser' as const, userId: U, emailHash: 'a'.repeat(64), githubLogin: 'ada', platformRole: null, now };
  it('allows a new user', () => assert.equal(decideUser(allow, initialUser)[0]!.type, 'UserAllowed'));
  it('refuses to allow twice', () => {
    const state = decideUser(allow, initialUser).reduce(evolveUser, initialUser);
    assert.throws(() => decideUser(allow, state), (e: unknown) => e instanceof DomainError && e.code === 'conflict');
  });
  it('refuses a malformed GitHub login', () => assert.throws(() => decideUser({ ...allow, githubLogin: 'not a login' }, initialUser), /not a GitHub login/));
});
