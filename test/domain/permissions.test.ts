import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { actions, can, isProjectAction, matrixAsMarkdown, parseLearningModeDefault, type Action, type Principal } from '../../domain/access/permissions.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../../adapters/paths.js';

describe('the RBAC matrix', () => {
  const everyone: Action[] = ['me.read', 'agents.read', 'projects.list'];
  const reading: Action[] = [...everyone, 'project.read', 'members.own_learning_mode'];
  const writing: Action[] = [...reading, 'runs.start', 'runs.cancel'];
  const projectAdmin: Action[] = [...writing, 'project.update', 'members.manage', 'repositories.manage', 'project.delete'];
  const platformAdmin = actions.filter((a) => a !== 'users.manage_owners');
  // given who asks, then exactly these actions are allowed
  const table: [string, Principal, Action[]][] = [
    ['signed in, no role anywhere', { platformRole: null, projectRole: null }, everyone],
    ['read', { platformRole: null, projectRole: 'read' }, reading],
    ['read_write', { platformRole: null, projectRole: 'read_write' }, writing],
    ['project admin (may delete the project and manage members)', { platformRole: null, projectRole: 'admin' }, projectAdmin],
    ['platform admin, no project role: everything but owners', { platformRole: 'admin', projectRole: null }, platformAdmin],
    ['platform owner with a read role: everything', { platformRole: 'owner', projectRole: 'read' }, actions],
  ];
  for (const [name, who, allowed] of table) {
    it(name, () => assert.deepEqual(actions.filter((a) => can(who, a)), allowed));
  }
  it('only project actions can be granted by a project role', () => {
    assert.deepEqual(actions.filter(isProjectAction), ['project.read', 'members.own_learning_mode', 'runs.start', 'runs.cancel', 'project.update', 'members.manage', 'repositories.manage', 'project.delete']);
  });
  it('is printed in the README as it is', () => {
    assert.ok(readFileSync(join(projectRoot, 'README.md'), 'utf8').includes(matrixAsMarkdown()), 'README.md holds the output of matrixAsMarkdown()');
  });
});

describe('CODEXK8S_LEARNING_MODE_DEFAULT', () => {
  const table: [string | undefined, boolean][] = [[undefined, false], ['', false], ['  ', false], ['on', true], ['ON', true], ['true', true], ['off', false], ['0', false]];
  for (const [raw, expected] of table) it(`${JSON.stringify(raw)} → ${expected}`, () => assert.equal(parseLearningModeDefault(raw), expected));
  it('refuses anything else, naming the variable', () => assert.throws(() => parseLearningModeDefault('maybe'), /CODEXK8S_LEARNING_MODE_DEFAULT must be on or off/));
});
