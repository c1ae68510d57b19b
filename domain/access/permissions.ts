import type { ProjectRole } from '../projects/events.js';
import type { PlatformRole } from '../users/events.js';

/** Who asks: their platform role, and their role in the project the action is on (null: none, or no project). */
export interface Principal {
  platformRole: PlatformRole;
  projectRole: ProjectRole | null;
}

type Granted = { platform: readonly NonNullable<PlatformRole>[]; project: readonly ProjectRole[]; anyone?: true };
const admins = ['owner', 'admin'] as const;
const members = ['read', 'read_write', 'admin'] as const;

/**
 * The one permission matrix: every staff API endpoint and every command on behalf of a person names
 * one of these actions. Platform owners and admins may do everything in every project; only an owner
 * may make or unmake an owner. In a project, `read` sees it and its runs, `read_write` also starts and
 * cancels runs, `admin` also changes its settings, members and repositories and may delete it.
 */
export const matrix = {
  'me.read': { platform: admins, project: [], anyone: true },
  'agents.read': { platform: admins, project: [], anyone: true },
  'projects.list': { platform: admins, project: [], anyone: true },
  'projects.create': { platform: admins, project: [] },
  'users.read': { platform: admins, project: [] },
  'users.manage': { platform: admins, project: [] },
  'users.manage_owners': { platform: ['owner'], project: [] },
  'deliveries.read': { platform: admins, project: [] },
  'project.read': { platform: admins, project: members },
  /** A member's own learning-mode override in the project; someone else's is `members.manage`. */
  'members.own_learning_mode': { platform: admins, project: members },
  'runs.start': { platform: admins, project: ['read_write', 'admin'] },
  'runs.cancel': { platform: admins, project: ['read_write', 'admin'] },
  'project.update': { platform: admins, project: ['admin'] },
  'members.manage': { platform: admins, project: ['admin'] },
  'repositories.manage': { platform: admins, project: ['admin'] },
  'project.delete': { platform: admins, project: ['admin'] },
} as const satisfies Record<string, Granted>;

export type Action = keyof typeof matrix;
export const actions = Object.keys(matrix) as Action[];

/** Actions on one project: someone who may not read the project is told it does not exist. */
export const isProjectAction = (action: Action): boolean => (matrix[action] as Granted).project.length > 0;

export function can(who: Principal, action: Action): boolean {
  const granted: Granted = matrix[action];
  if (granted.anyone) return true;
  if (who.platformRole !== null && granted.platform.includes(who.platformRole)) return true;
  return who.projectRole !== null && granted.project.includes(who.projectRole);
}

/** Every kind of principal the matrix tells apart, by the name the README's columns give it. */
export const principals: readonly (readonly [string, Principal])[] = [
  ['owner', { platformRole: 'owner', projectRole: null }],
  ['admin', { platformRole: 'admin', projectRole: null }],
  ['project admin', { platformRole: null, projectRole: 'admin' }],
  ['read_write', { platformRole: null, projectRole: 'read_write' }],
  ['read', { platformRole: null, projectRole: 'read' }],
  ['signed in, no role', { platformRole: null, projectRole: null }],
];

/** The matrix as the README prints it (a test keeps the two the same). */
export function matrixAsMarkdown(): string {
  const lines = [
    `| action | ${principals.map(([name]) => name).join(' | ')} |`,
    `| --- | ${principals.map(() => ':-:').join(' | ')} |`,
    ...actions.map((action) => `| \`${action}\` | ${principals.map(([, who]) => (can(who, action) ? 'yes' : '')).join(' | ')} |`),
  ];
  return lines.join('\n');
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
