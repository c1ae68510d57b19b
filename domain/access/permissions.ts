import type { ProjectRole } from '../projects/events.js';
import type { PlatformRole } from '../users/events.js';

/** What someone may do in a project. */
export type Permission = 'read' | 'write' | 'manage' | 'delete';

/**
 * The per-project RBAC matrix: `read` sees the project and its runs; `read_write` also starts and
 * cancels runs; `admin` also manages members and repositories and may delete the project. A
 * platform owner or admin may do everything in every project.
 */
const granted: Record<ProjectRole, readonly Permission[]> = {
  read: ['read'],
  read_write: ['read', 'write'],
  admin: ['read', 'write', 'manage', 'delete'],
};

export function can(who: { platformRole: PlatformRole; projectRole: ProjectRole | null }, permission: Permission): boolean {
  if (who.platformRole === 'owner' || who.platformRole === 'admin') return true;
  return who.projectRole !== null && granted[who.projectRole].includes(permission);
}

/**
 * Learning mode for a run: the member's own override in the project, else the user's, else the
 * project's setting, else the platform default. A toggle, never an error: the pipeline runs either way.
 */
export function learningModeFor(settings: {
  member: boolean | null;
  user: boolean | null;
  project: boolean | null;
  platformDefault: boolean;
}): boolean {
  return settings.member ?? settings.user ?? settings.project ?? settings.platformDefault;
}

/** `CODEXK8S_LEARNING_MODE_DEFAULT`: the template says on; empty or unset means off. */
export function parseLearningModeDefault(raw: string | undefined): boolean {
  const value = (raw ?? '').trim().toLowerCase();
  if (value === '') return false;
  if (['on', 'true', '1', 'yes'].includes(value)) return true;
  if (['off', 'false', '0', 'no'].includes(value)) return false;
  throw new RangeError(`CODEXK8S_LEARNING_MODE_DEFAULT must be on or off (or empty), not ${JSON.stringify(raw!.slice(0, 20))}`);
}
