import { tokenKeyId } from '../../domain/projects/events.js';
import { projection } from '../projection.js';

// The models authorisation reads. They stop on an event they cannot apply: an authorisation
// event is never skipped.

export const users = projection({
  name: 'users',
  tables: ['users'],
  handles: ['UserAllowed', 'UserPlatformRoleChanged', 'UserLearningModeSet', 'UserGithubLinked', 'UserRemoved'],
  onFailure: 'stop',
  async apply(events, { tx, table }) {
    for (const e of events) {
      const at = e.createdAt;
      switch (e.type) {
        case 'UserAllowed':
          await tx.query(
            `INSERT INTO ${table('users')} (id, email_hash, github_login, github_user_id, platform_role, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)`,
            [e.data.userId, e.data.emailHash, e.data.githubLogin, e.data.githubUserId ?? null, e.data.platformRole, e.data.allowedAt, at],
          );
          break;
        case 'UserGithubLinked':
          await updateOne(tx, `UPDATE ${table('users')} SET github_login = $2, github_user_id = $3, updated_at = $4 WHERE id = $1`, [e.data.userId, e.data.githubLogin, e.data.githubUserId, at]);
          break;
        case 'UserRemoved':
          // Allowed again later, the same user comes back as a new row.
          await updateOne(tx, `DELETE FROM ${table('users')} WHERE id = $1`, [e.data.userId]);
          break;
        case 'UserPlatformRoleChanged':
          await updateOne(tx, `UPDATE ${table('users')} SET platform_role = $2, updated_at = $3 WHERE id = $1`, [e.data.userId, e.data.platformRole, at]);
          break;
        case 'UserLearningModeSet':
          await updateOne(tx, `UPDATE ${table('users')} SET learning_mode = $2, updated_at = $3 WHERE id = $1`, [e.data.userId, e.data.learningMode, at]);
          break;
        default:
          break;
      }
    }
  },
});

export const projects = projection({
  name: 'projects',
  tables: ['projects'],
  handles: ['ProjectCreated', 'ProjectRenamed', 'ProjectLearningModeSet', 'ProjectSlotsSet', 'ProjectDeleted'],
  onFailure: 'stop',
  async apply(events, { tx, table }) {
    for (const e of events) {
      switch (e.type) {
        case 'ProjectCreated':
          await tx.query(
            `INSERT INTO ${table('projects')} (id, key, name, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)`,
            [e.data.projectId, e.data.key, e.data.name, e.data.createdAt, e.createdAt],
          );
          break;
        case 'ProjectRenamed':
          await updateOne(tx, `UPDATE ${table('projects')} SET name = $2, updated_at = $3 WHERE id = $1`, [e.data.projectId, e.data.name, e.createdAt]);
          break;
        case 'ProjectLearningModeSet':
          await updateOne(tx, `UPDATE ${table('projects')} SET learning_mode = $2, updated_at = $3 WHERE id = $1`, [e.data.projectId, e.data.learningMode, e.createdAt]);
          break;
        case 'ProjectSlotsSet':
          await updateOne(tx, `UPDATE ${table('projects')} SET slots = $2, updated_at = $3 WHERE id = $1`, [e.data.projectId, e.data.slots, e.createdAt]);
          break;
        case 'ProjectDeleted':
          await updateOne(tx, `DELETE FROM ${table('projects')} WHERE id = $1`, [e.data.projectId]);
          break;
        default:
          break;
      }
    }
  },
});

export const projectMembers = projection({
  name: 'project_members',
  tables: ['project_members'],
  handles: ['MemberAdded', 'MemberRoleChanged', 'MemberLearningModeSet', 'MemberRemoved', 'ProjectDeleted', 'UserRemoved'],
  onFailure: 'stop',
  async apply(events, { tx, table }) {
    for (const e of events) {
      switch (e.type) {
        case 'MemberAdded':
          // A membership granted afresh replaces one from before the user was removed (events recorded
          // before a removal ended memberships left such rows behind).
          await tx.query(
            `INSERT INTO ${table('project_members')} (project_id, user_id, role, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (project_id, user_id) DO UPDATE SET role = EXCLUDED.role, learning_mode = NULL, created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at`,
            [e.data.projectId, e.data.userId, e.data.role, e.data.addedAt, e.createdAt],
          );
          break;
        case 'UserRemoved':
          // A removal from the platform ends every membership (domain/projects/project.ts, membershipOf).
          await tx.query(`DELETE FROM ${table('project_members')} WHERE user_id = $1`, [e.data.userId]);
          break;
        // These may find no row: a log recorded before a removal ended memberships has them after the
        // user's UserRemoved, which dropped the row (the decider no longer records them there).
        case 'MemberRoleChanged':
          await tx.query(`UPDATE ${table('project_members')} SET role = $3, updated_at = $4 WHERE project_id = $1 AND user_id = $2`, [e.data.projectId, e.data.userId, e.data.role, e.createdAt]);
          break;
        case 'MemberLearningModeSet':
          await tx.query(`UPDATE ${table('project_members')} SET learning_mode = $3, updated_at = $4 WHERE project_id = $1 AND user_id = $2`, [e.data.projectId, e.data.userId, e.data.learningMode, e.createdAt]);
          break;
        case 'MemberRemoved':
          await tx.query(`DELETE FROM ${table('project_members')} WHERE project_id = $1 AND user_id = $2`, [e.data.projectId, e.data.userId]);
          break;
        case 'ProjectDeleted':
          await tx.query(`DELETE FROM ${table('project_members')} WHERE project_id = $1`, [e.data.projectId]);
          break;
        default:
          break;
      }
    }
  },
});

const keyIdOf = (ciphertext: string | null) => (ciphertext ? tokenKeyId(ciphertext) : null);

export const repositories = projection({
  name: 'repositories',
  tables: ['repositories'],
  handles: ['RepositoryConnected', 'RepositoryRenamed', 'RepositoryTokenReencrypted', 'RepositoryDisconnected', 'ProjectDeleted'],
  onFailure: 'stop',
  async apply(events, { tx, table }) {
    for (const e of events) {
      switch (e.type) {
        case 'RepositoryConnected':
          await tx.query(
            `INSERT INTO ${table('repositories')} (id, project_id, provider, owner, name, has_token, token_key_id, github_repository_id, services_yaml_path, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
            [
              e.data.repositoryId, e.data.projectId, e.data.provider, e.data.owner, e.data.name, e.data.tokenCiphertext !== null, keyIdOf(e.data.tokenCiphertext),
              e.data.githubRepositoryId ?? null, e.data.servicesYamlPath ?? 'services.yaml', e.data.connectedAt, e.createdAt,
            ],
          );
          break;
        case 'RepositoryRenamed':
          await updateOne(tx, `UPDATE ${table('repositories')} SET owner = $2, name = $3, updated_at = $4 WHERE id = $1`, [e.data.repositoryId, e.data.owner, e.data.name, e.createdAt]);
          break;
        case 'RepositoryTokenReencrypted':
          await updateOne(tx, `UPDATE ${table('repositories')} SET token_key_id = $2, updated_at = $3 WHERE id = $1`, [e.data.repositoryId, keyIdOf(e.data.tokenCiphertext), e.createdAt]);
          break;
        case 'RepositoryDisconnected':
          await updateOne(tx, `DELETE FROM ${table('repositories')} WHERE id = $1`, [e.data.repositoryId]);
          break;
        case 'ProjectDeleted':
          await tx.query(`DELETE FROM ${table('repositories')} WHERE project_id = $1`, [e.data.projectId]);
          break;
        default:
          break;
      }
    }
  },
});

/** An update of a row that must exist: a missing one means the log and the model disagree. */
async function updateOne(tx: { query: (text: string, values: unknown[]) => Promise<{ rowCount: number | null }> }, text: string, values: unknown[]) {
  const { rowCount } = await tx.query(text, values);
  if (rowCount !== 1) throw new Error(`expected to change one row, changed ${rowCount ?? 0}`);
}
