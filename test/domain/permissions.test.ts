import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { can, parseLearningModeDefault, type Permission } from '../../domain/access/permissions.js';

describe('the RBAC matrix', () => {
  const permissions: Permission[] = ['read', 'write', 'manage', 'delete'];
  const table: [string, Parameters<typeof can>[0], Permission[]][] = [
    ['read', { platformRole: null, projectRole: 'read' }, ['read']],
    ['read_write', { platformRole: null, projectRole: 'read_write' }, ['read', 'write']],
    ['admin (may delete the project)', { platformRole: null, projectRole: 'admin' }, ['read', 'write', 'manage', 'delete']],
    ['no role in the project', { platformRole: null, projectRole: null }, []],
    ['platform admin, no project role', { platformRole: 'admin', projectRole: null }, permissions],
    ['platform owner with a read role', { platformRole: 'owner', projectRole: 'read' }, permissions],
  ];
  for (const [name, who, allowed] of table) {
    it(name, () => assert.deepEqual(permissions.filter((p) => can(who, p)), allowed));
  }
});

describe('CODEXK8S_LEARNING_MODE_DEFAULT', () => {
  const table: [string | undefined, boolean][] = [[undefined, false], ['', false], ['  ', false], ['on', true], ['ON', true], ['true', true], ['off', false], ['0', false]];
  for (const [raw, expected] of table) it(`${JSON.stringify(raw)} → ${expected}`, () => assert.equal(parseLearningModeDefault(raw), expected));
  it('refuses anything else, naming the variable', () => assert.throws(() => parseLearningModeDefault('maybe'), /CODEXK8S_LEARNING_MODE_DEFAULT must be on or off/));
});
