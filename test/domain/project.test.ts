import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ProjectEvent } from '../../domain/projects/events.js';
import { decideProject, evolveProject, initialProject, type ProjectCommand } from '../../domain/projects/project.js';
import { DomainError } from '../../domain/shared/errors.js';
import { decideUser, evolveUser, initialUser } from '../../domain/users/user.js';

const P = '00000000-0000-4000-8000-000000000001';
const U = '00000000-0000-4000-8000-000000000002';
const now = '2026-11-27T10:00:00.000Z';
const created = { type: 'ProjectCreated', data: { projectId: P, key: 'alpha', name: 'Alpha', createdAt: now } } satisfies ProjectEvent;
// Under the user's first allowance; `allowance` absent is how events recorded before it was kept read.
const added = (role: 'read' | 'read_write' | 'admin', allowance?: number) =>
  ({ type: 'MemberAdded', data: { projectId: P, userId: U, role, addedAt: now, ...(allowance ? { allowance } : {}) } }) satisfies ProjectEvent;
const memberRemoved = { type: 'MemberRemoved', data: { projectId: P, userId: U } } satisfies ProjectEvent;
// What the user is allowed under: first allowed before `now`, removed, then allowed again after it.
const first = { allowance: 1, allowedAt: '2026-11-27T09:00:00.000Z' };
const again = { allowance: 2, allowedAt: '2026-11-27T11:00:00.000Z' };
const fold = (events: ProjectEvent[]) => events.reduce(evolveProject, initialProject);
const connect = { type: 'ConnectRepository', repositoryId: U, provider: 'github', githubRepositoryId: 99, owner: 'o', name: 'n', tokenCiphertext: null, now } as const;
const connected = { type: 'RepositoryConnected', data: { repositoryId: U, projectId: P, provider: 'github', githubRepositoryId: 99, owner: 'o', name: 'n', tokenCiphertext: null, connectedAt: now } } satisfies ProjectEvent;
// Key rotation: ciphertexts are `<key id>.<sealed>`; the decider compares key ids only.
const sealedBy = (kid: string) => ({ ...connected, data: { ...connected.data, tokenCiphertext: `${kid}.c2VhbGVk` } }) satisfies ProjectEvent;
const reseal = (kid: string) => ({ type: 'ReencryptRepositoryToken', repositoryId: U, tokenCiphertext: `${kid}.bmV3` }) as const;
const resealed = (kid: string) => ({ type: 'RepositoryTokenReencrypted', data: { repositoryId: U, projectId: P, tokenCiphertext: `${kid}.bmV3` } }) satisfies ProjectEvent;
const disconnected = { type: 'RepositoryDisconnected', data: { repositoryId: U, projectId: P } } satisfies ProjectEvent;
const deleted = { type: 'ProjectDeleted', data: { projectId: P, deletedAt: now } } satisfies ProjectEvent;

// given (past events) / when (command) / then (new events, or the error code)
const table: [string, ProjectEvent[], ProjectCommand, ProjectEvent[] | DomainError['code']][] = [
  ['creates a project', [], { type: 'CreateProject', projectId: P, key: 'alpha', name: 'Alpha', now }, [created]],
  ['refuses a second creation', [created], { type: 'CreateProject', projectId: P, key: 'alpha', name: 'Alpha', now }, 'conflict'],
  ['refuses a malformed key', [], { type: 'CreateProject', projectId: P, key: '-x', name: 'X', now }, 'invalid_argument'],
  ['adds a member', [created], { type: 'AddMember', userId: U, grant: first, role: 'read', now }, [added('read', 1)]],
  ['the same role again changes nothing', [created, added('read')], { type: 'AddMember', userId: U, grant: first, role: 'read', now }, []],
  ['another role changes it', [created, added('read')], { type: 'AddMember', userId: U, grant: first, role: 'admin', now }, [{ type: 'MemberRoleChanged', data: { projectId: P, userId: U, role: 'admin' } } satisfies ProjectEvent]],
  ['a user allowed again is added afresh, whatever role they had', [created, added('admin')], { type: 'AddMember', userId: U, grant: again, role: 'admin', now }, [added('admin', 2)]],
  ['no members in a project that does not exist', [], { type: 'AddMember', userId: U, grant: first, role: 'read', now }, 'not_found'],
  ['removes a member', [created, added('read', 1)], { type: 'RemoveMember', userId: U, grant: first }, [memberRemoved]],
  ['removing a member that is not one changes nothing', [created], { type: 'RemoveMember', userId: U, grant: first }, []],
  ['a membership from before the user was removed is none: nothing to remove', [created, added('read', 1)], { type: 'RemoveMember', userId: U, grant: again }, []],
  ['a membership recorded before allowances were kept counts if granted after the current allowance began', [created, added('read')], { type: 'RemoveMember', userId: U, grant: { allowance: 2, allowedAt: '2026-11-27T09:30:00.000Z' } }, [memberRemoved]],
  ['and not if granted before it', [created, added('read')], { type: 'RemoveMember', userId: U, grant: again }, []],
  ['nor of a user not allowed now', [created, added('read', 1)], { type: 'RemoveMember', userId: U, grant: null }, []],
  ['sets a member\'s learning mode', [created, added('read', 1)], { type: 'SetMemberLearningMode', userId: U, grant: first, learningMode: true }, [{ type: 'MemberLearningModeSet', data: { projectId: P, userId: U, learningMode: true } }]],
  ['not of a membership from before the user was removed', [created, added('read', 1)], { type: 'SetMemberLearningMode', userId: U, grant: again, learningMode: true }, 'not_found'],
  ['no repositories in a deleted project', [created, { type: 'ProjectDeleted', data: { projectId: P, deletedAt: now } } satisfies ProjectEvent], connect, 'not_found'],
  ['connects a repository by its GitHub id', [created], connect, [connected]],
  ['refuses the same repository twice', [created, connected], connect, 'conflict'],
  ['a rename keeps the id and takes the new name', [created, connected], { type: 'RenameRepository', githubRepositoryId: 99, owner: 'o2', name: 'n2' }, [{ type: 'RepositoryRenamed', data: { repositoryId: U, projectId: P, owner: 'o2', name: 'n2' } }]],
  ['sets its own number of slots', [created], { type: 'SetSlots', slots: 3 }, [{ type: 'ProjectSlotsSet', data: { projectId: P, slots: 3 } }]],
  ['the same number again changes nothing', [created, { type: 'ProjectSlotsSet', data: { projectId: P, slots: 3 } }], { type: 'SetSlots', slots: 3 }, []],
  ['back to the platform\'s number', [created, { type: 'ProjectSlotsSet', data: { projectId: P, slots: 3 } }], { type: 'SetSlots', slots: null }, [{ type: 'ProjectSlotsSet', data: { projectId: P, slots: null } }]],
  ['no zero slots', [created], { type: 'SetSlots', slots: 0 }, 'invalid_argument'],
  ['the same name is no rename', [created, connected], { type: 'RenameRepository', githubRepositoryId: 99, owner: 'o', name: 'n' }, []],
  ['re-encrypts a token sealed under an older key', [created, sealedBy('a')], reseal('b'), [resealed('b')]],
  ['a token re-encrypted under the current key already gives nothing (a rerun)', [created, sealedBy('a'), resealed('b')], reseal('b'), []],
  ['a token connected under the current key gives nothing', [created, sealedBy('b')], reseal('b'), []],
  ['the newest ciphertext counts: re-encrypted twice, back under the first key', [created, sealedBy('a'), resealed('b')], reseal('a'), [resealed('a')]],
  ['a disconnected repository gives nothing', [created, sealedBy('a'), disconnected], reseal('b'), []],
  ['a repository without a token gives nothing', [created, connected], reseal('b'), []],
  ['a repository of a deleted project gives nothing', [created, sealedBy('a'), deleted], reseal('b'), []],
  ['a repository the project never had gives nothing', [created], reseal('b'), []],
  ['another repository\'s id is no rename', [created, connected], { type: 'RenameRepository', githubRepositoryId: 100, owner: 'o2', name: 'n2' }, []],
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
  const allow = { type: 'AllowUser' as const, userId: U, emailHash: 'a'.repeat(64), github: { id: 1, login: 'ada' }, platformRole: null, now };
  it('allows a new user', () => assert.equal(decideUser(allow, initialUser)[0]!.type, 'UserAllowed'));
  it('refuses to allow twice', () => {
    const state = decideUser(allow, initialUser).reduce(evolveUser, initialUser);
    assert.throws(() => decideUser(allow, state), (e: unknown) => e instanceof DomainError && e.code === 'conflict');
  });
  it('counts the times a user was allowed: a removal ends what was granted under the last', () => {
    const allowance = (events: ReturnType<typeof decideUser>) => {
      const state = events.reduce(evolveUser, initialUser);
      return state.status === 'none' ? 0 : state.allowance;
    };
    const first = decideUser(allow, initialUser);
    const removed = [...first, ...decideUser({ type: 'RemoveUser', now }, first.reduce(evolveUser, initialUser))];
    const again = [...removed, ...decideUser(allow, removed.reduce(evolveUser, initialUser))];
    assert.deepEqual([allowance(first), allowance(removed), allowance(again)], [1, 1, 2]);
  });
  it('refuses a malformed GitHub login', () => assert.throws(() => decideUser({ ...allow, github: { id: 1, login: 'not a login' } }, initialUser), /not a GitHub account/));
});
