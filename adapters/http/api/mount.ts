import type Router from '@koa/router';
import type { Context } from 'koa';
import type { EventStore } from '../../../ports/event-store.js';
import type { GithubDirectory, GithubLogin } from '../../../ports/github.js';
import type { RepositoryProviders } from '../../../domain/repositories/provider.js';
import { setupCommands } from '../../../commands/setup.js';
import { staffRunCommands } from '../../../commands/staff-runs.js';
import type { TriggerConfig } from '../../../domain/webhooks/trigger-policy.js';
import { staffQueries } from '../../../queries/staff.js';
import type { ReplicaReads } from '../../postgres/replica-reads.js';
import type { StaffApiConfig } from '../../config.js';
import { tokenCipher } from '../../crypto/token-cipher.js';
import type { Logger } from '../../log.js';
import { authenticate } from '../auth/authenticate.js';
import { callbackPath, loginPath, mountLogin } from '../auth/login.js';
import { loginStates, staffTokens } from '../auth/tokens.js';
import { ApiError, invalidArgument } from '../errors.js';
import { minPositionOf } from '../consistency.js';
import { noBody } from './input.js';
import { openApiDocument } from './openapi.js';
import { staffApi } from './staff-api.js';

export const apiPrefix = '/api/v1';

export interface StaffApiMountDeps {
  config: StaffApiConfig;
  store: Pick<EventStore, 'append' | 'readStreams' | 'readStream'>;
  reads: ReplicaReads;
  github: GithubDirectory;
  /** Where repositories are connected from (githubDirectory() is both this and `github`). */
  providers: RepositoryProviders;
  /** GitHub's OAuth web flow, when sign-in is configured. */
  githubLogin: GithubLogin | undefined;
  triggers: TriggerConfig;
  learningModeDefault: boolean;
  log: Logger;
  now?: () => string;
}

/** The staff API under /api/v1: sign-in, the endpoints of the route table behind bearer tokens, its OpenAPI document. */
export function mountStaffApi(router: Router, deps: StaffApiMountDeps): ReturnType<typeof staffApi> {
  const now = deps.now ?? (() => new Date().toISOString());
  const { config, store } = deps;
  const tokens = staffTokens(config.jwtKeys, { ttlSeconds: config.jwtTtlSeconds });
  const setup = setupCommands({ store, github: deps.github, providers: deps.providers, emailHashKey: config.emailHashKey, now });
  const cipher = config.tokenKeys ? tokenCipher(config.tokenKeys) : undefined;
  const routes = staffApi({
    store,
    setup,
    runs: staffRunCommands({ store, now, learningModeDefault: deps.learningModeDefault, agents: new Set(Object.values(deps.triggers).map((t) => t.agent)) }),
    queries: staffQueries(deps.reads),
    encryptToken: (token, repositoryId) => {
      if (!cipher) throw new ApiError(412, 'failed_precondition', 'repository tokens cannot be stored: CODEXK8S_TOKEN_ENCRYPTION_KEYS is not set');
      return cipher.encrypt(token, repositoryId);
    },
    triggers: deps.triggers,
  });

  const openApi = openApiDocument(routes);
  router.get(`${apiPrefix}/openapi.json`, (ctx) => {
    ctx.body = openApi;
  });
  if (deps.githubLogin) {
    mountLogin(router, {
      store, emailHashKey: config.emailHashKey, now, github: deps.githubLogin, tokens, loginStates: loginStates(config.jwtKeys),
      publicUrl: config.publicUrl, perAddressPerMinute: config.loginsPerMinute, log: deps.log,
    });
  } else {
    const off = () => {
      throw new ApiError(503, 'unavailable', 'GitHub sign-in is not configured (CODEXK8S_GITHUB_OAUTH_CLIENT_ID and _SECRET); use `codex-k8s auth token`');
    };
    router.get(loginPath, off);
    router.get(callbackPath, off);
  }
  const signedIn = authenticate({ tokens, store, requestsPerMinute: config.requestsPerMinute });
  for (const r of routes) {
    const takesNoBody = !r.body && r.method !== 'get';
    router[r.method](`${apiPrefix}${r.path}`, signedIn, async (ctx: Context) => {
      // Refused everywhere, also where it is not needed: a client's mistake shows at once.
      if (!r.query && ctx.querystring !== '') throw invalidArgument('this endpoint takes no query parameters');
      minPositionOf(ctx);
      if (takesNoBody) await noBody(ctx);
      await r.handle(ctx);
    });
  }
  return routes;
}
