import type { Command } from 'commander';
import { databaseConfig, githubConfig } from '../config.js';
import { githubDirectory } from '../github/directory.js';
import { parseKeyRing } from '../crypto/keys.js';
import { tokenCipher } from '../crypto/token-cipher.js';
import { createEventStore } from '../postgres/event-store.js';
import type { EventMeta } from '../../ports/event-store.js';
import { createPools } from '../postgres/pools.js';
import { setupCommands } from '../../commands/setup.js';
import type { ProjectRole } from '../../domain/projects/events.js';
import { providerNames, RepositoryProviderKind } from '../../domain/repositories/provider.js';
import { CliError } from './errors.js';
import { printJson, say } from './output.js';
import { randomUUID } from 'node:crypto';

export const operator = (): EventMeta => ({ correlationId: `cli-${randomUUID()}`, actor: { type: 'system', id: 'operator-cli' } });

async function withSetup<T>(work: (commands: ReturnType<typeof setupCommands>) => Promise<T>): Promise<T> {
  const emailHashKey = parseKeyRing('CODEXK8S_EMAIL_HASH_KEY', process.env.CODEXK8S_EMAIL_HASH_KEY, { minBytes: 32 }).current.key;
  const github = githubDirectory(githubConfig().apiUrl);
  const pools = createPools({ ...databaseConfig(), poolSize: 2 }, 'codex-k8s-cli');
  try {
    return await work(setupCommands({ store: createEventStore(pools.primary), github, providers: { github }, emailHashKey, now: () => new Date().toISOString() }));
  } finally {
    await pools.end();
  }
}

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) throw new CliError('no token on stdin: pipe it in, or use --token-env VAR');
  let data = '';
  for await (const chunk of process.stdin) {
    data += chunk;
    if (data.length > 4096) throw new CliError('the token on stdin is longer than 4096 characters');
  }
  return data.trim();
}

const answer = (json: boolean | undefined, value: Record<string, unknown>, text: string) => (json ? printJson(value) : say(text));

export function registerSetupCommands(program: Command): void {
  const users = program.command('users').description('who may sign in (no self-signup)');
  users
    .command('allow <email>')
    .description('allow a person in; matched by e-mail at their first GitHub login (the e-mail itself is not stored)')
    .option('--github-login <login>', 'their GitHub login, for webhook senders (looked up on GitHub: kept by its numeric id)')
    .option('--platform-role <role>', 'owner or admin')
    .option('--json', 'print JSON')
    .action(async (email: string, options: { githubLogin?: string; platformRole?: string; json?: boolean }) => {
      if (options.platformRole !== undefined && !['owner', 'admin'].includes(options.platformRole)) throw new CliError('--platform-role must be owner or admin');
      const result = await withSetup((c) =>
        c.allowUser({ email, githubLogin: options.githubLogin ?? null, platformRole: (options.platformRole as 'owner' | 'admin' | undefined) ?? null }, operator()),
      );
      answer(options.json, { user_id: result.userId, position: result.position.toString() }, `allowed user ${result.userId}`);
    });

  const projects = program.command('projects').description('projects, their members and repositories');
  projects
    .command('create <key>')
    .description('create a project')
    .option('--name <name>', 'display name (default: the key)')
    .option('--json', 'print JSON')
    .action(async (key: string, options: { name?: string; json?: boolean }) => {
      const result = await withSetup((c) => c.createProject({ key, name: options.name ?? key }, operator()));
      answer(options.json, { project_id: result.projectId, position: result.position.toString() }, `created project ${key} (${result.projectId})`);
    });
  projects
    .command('add-member <key> <email>')
    .description('give an allowed user a role in a project (again: change the role)')
    .requiredOption('--role <role>', 'read, read_write or admin')
    .option('--json', 'print JSON')
    .action(async (key: string, email: string, options: { role: string; json?: boolean }) => {
      if (!['read', 'read_write', 'admin'].includes(options.role)) throw new CliError('--role must be read, read_write or admin');
      const result = await withSetup((c) => c.addMember({ projectKey: key, email, role: options.role as ProjectRole }, operator()));
      answer(options.json, { changed: result.position !== undefined, position: result.position?.toString() ?? null }, result.position ? `${key}: role set to ${options.role}` : `${key}: already ${options.role}, nothing changed`);
    });
  projects
    .command('set-slots <key> <slots>')
    .description("how many of the project's runs may run at once (1-100), or `default` for CODEXK8S_SLOTS_PER_PROJECT")
    .option('--json', 'print JSON')
    .action(async (key: string, raw: string, options: { json?: boolean }) => {
      const slots = raw === 'default' ? null : /^\d{1,3}$/.test(raw) ? Number(raw) : Number.NaN;
      if (Number.isNaN(slots)) throw new CliError('slots are a whole number from 1 to 100, or default');
      const result = await withSetup((c) => c.setProjectSlots({ projectKey: key, slots }, operator()));
      answer(options.json, { changed: result.position !== undefined, position: result.position?.toString() ?? null }, `${key}: ${slots ?? 'the default number of'} slots`);
    });
  projects
    .command('add-repo <key> <provider> <repository>')
    .description('connect a repository (<owner>/<name>) to a project, checked on GitHub with its token and kept by its numeric id; the token comes from an environment variable or stdin, never argv')
    .option('--token-env <var>', 'read the token from this environment variable')
    .option('--token-stdin', 'read the token from stdin')
    .option('--json', 'print JSON')
    .action(async (key: string, provider: string, repository: string, options: { tokenEnv?: string; tokenStdin?: boolean; json?: boolean }) => {
      if (!RepositoryProviderKind.is(provider)) throw new CliError(`the provider is ${Object.keys(providerNames).join(' or ')}`);
      const [owner, name, ...rest] = repository.split('/');
      if (!owner || !name || rest.length > 0) throw new CliError('the repository is <owner>/<name>');
      let token: string | null = null;
      if (options.tokenEnv) {
        token = process.env[options.tokenEnv]?.trim() || null;
        if (!token) throw new CliError(`${options.tokenEnv} is empty or not set`);
      } else if (options.tokenStdin) {
        token = (await readStdin()) || null;
      }
      const cipher = token ? tokenCipher(parseKeyRing('CODEXK8S_TOKEN_ENCRYPTION_KEYS', process.env.CODEXK8S_TOKEN_ENCRYPTION_KEYS, { exactBytes: 32 })) : undefined;
      const result = await withSetup((c) => c.connectRepository({ projectKey: key, provider, owner, name, token }, (t, id) => cipher!.encrypt(t, id), operator()));
      answer(options.json, { repository_id: result.repositoryId, github_repository_id: result.githubRepositoryId, has_token: token !== null, position: result.position.toString() }, `connected ${owner}/${name} (${providerNames[provider]} id ${result.githubRepositoryId}) to ${key}${token ? ' (token encrypted)' : ''}`);
    });
}
