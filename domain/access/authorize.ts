import { DomainError } from '../shared/errors.js';
import { membershipOf, type Project, type ProjectMember } from '../projects/project.js';
import { grantOf, type User } from '../users/user.js';
import { can, isProjectAction, type Action } from './permissions.js';

export type AllowedUser = Extract<User, { status: 'allowed' }>;
export type ActiveProject = Extract<Project, { status: 'active' }>;

/**
 * The matrix applied to the current states of the streams (never to a read model): who asks, and
 * the project the action is on. Someone no longer allowed is unauthorised; a project they may not
 * read does not exist for them (404, not 403); an action their role lacks is forbidden.
 */
export function authorize(action: Action, user: User, project?: Project): { user: AllowedUser; project?: ActiveProject; member?: ProjectMember } {
  if (user.status !== 'allowed') throw new DomainError('unauthorized', 'not signed in');
  if (!isProjectAction(action)) {
    if (!can({ platformRole: user.platformRole, projectRole: null }, action)) throw new DomainError('forbidden', `${action} needs another role`);
    return { user };
  }
  if (!project || project.status !== 'active') throw new DomainError('not_found', 'project not found');
  const member = membershipOf(project, user.userId, grantOf(user));
  const who = { platformRole: user.platformRole, projectRole: member?.role ?? null };
  if (!can(who, 'project.read')) throw new DomainError('not_found', 'project not found');
  if (!can(who, action)) throw new DomainError('forbidden', `${action} needs another role in this project`);
  return { user, project, ...(member ? { member } : {}) };
}
