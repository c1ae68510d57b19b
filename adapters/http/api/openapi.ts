import type { StaffRoute } from './routes.js';
import type { StrictObject } from './input.js';

/** Statuses every staff endpoint may answer, beside its own. */
const commonStatuses = [400, 401, 429, 503] as const;
/** And every endpoint that reads a body. */
const bodyStatuses = [413, 415] as const;

const reasons: Record<number, string> = {
  200: 'OK', 302: 'Redirect to GitHub', 201: 'Created', 204: 'No content', 400: 'Invalid argument', 401: 'No valid staff token, or the user is no longer allowed',
  403: 'The role lacks the action', 404: 'Not found, or not visible to this user', 409: 'Conflict', 412: 'Failed precondition',
  413: 'Body too large', 415: 'Body is not application/json', 429: 'Too many requests (Retry-After)', 502: 'GitHub failed or could not be reached', 503: 'Unavailable (Retry-After)',
};

/**
 * The statuses an operation is documented with: its own, the common ones, and the body ones when it
 * may be sent a body (a command without input refuses any but `{}`).
 */
export const documentedStatuses = (route: Pick<StaffRoute, 'statuses' | 'body' | 'method'>): number[] =>
  [...new Set([...route.statuses, ...commonStatuses, ...(route.method !== 'get' ? bodyStatuses : [])])].sort();

const openApiPath = (path: string) => path.replace(/:(\w+)/g, '{$1}');
const schemaOf = (input: StrictObject) => {
  const required = Object.keys((input.codec as unknown as { types: [{ props: Record<string, unknown> }] }).types[0].props);
  return {
    type: 'object',
    additionalProperties: false,
    required,
    properties: Object.fromEntries([...input.keys].map((k) => [k, { description: (input.codec as unknown as { types: { props: Record<string, { name: string }> }[] }).types.find((t) => t.props[k])!.props[k]!.name }])),
  };
};

/**
 * The OpenAPI 3.1 document of the staff API, built from the route table the server mounts (a test
 * checks the mounted routes and the statuses they answer against it).
 */
export function openApiDocument(routes: readonly StaffRoute[]) {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const path = openApiPath(route.path);
    const parameters = [
      ...[...route.path.matchAll(/:(\w+)/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } })),
      ...(route.query ? [...route.query.keys].map((k) => ({ name: k, in: 'query', required: false, schema: { type: 'string' } })) : []),
      { name: 'X-Codex-Min-Position', in: 'header', required: false, schema: { type: 'string' }, description: 'answer only once the read models reached this position (read-your-writes)' },
    ];
    (paths[path] ??= {})[route.method] = {
      operationId: `${route.method}${path.replace(/[{}]/g, '').replace(/[/-](\w)/g, (_m, c: string) => c.toUpperCase())}`,
      summary: route.summary,
      description: `Needs \`${route.action}\` in the RBAC matrix.`,
      security: [{ bearer: [] }],
      parameters,
      ...(route.body ? { requestBody: { required: true, content: { 'application/json': { schema: schemaOf(route.body) } } } } : {}),
      responses: Object.fromEntries(documentedStatuses(route).map((status) => [
        String(status),
        status === 204 ? { description: reasons[status] } : {
          description: reasons[status] ?? String(status),
          content: { 'application/json': { schema: { $ref: status < 300 ? '#/components/schemas/Answer' : '#/components/schemas/Error' } } },
        },
      ])),
    };
  }
  const publicOperation = (operationId: string, summary: string, statuses: number[], parameters: unknown[] = []) => ({
    get: {
      operationId, summary, security: [], parameters,
      responses: Object.fromEntries(statuses.map((status) => [String(status), {
        description: reasons[status] ?? String(status),
        ...(status === 302 ? {} : { content: { 'application/json': { schema: { $ref: status < 300 ? '#/components/schemas/Answer' : '#/components/schemas/Error' } } } }),
      }])),
    },
  });
  paths['/auth/github/login'] = publicOperation('getAuthGithubLogin', 'sign in: redirects to GitHub with a single-use state and a PKCE challenge', [302, 429, 503]);
  paths['/auth/github/callback'] = publicOperation('getAuthGithubCallback', 'GitHub sends the browser back here: answers {token, token_type, expires_at, user}', [200, 400, 401, 403, 429, 503], [
    { name: 'code', in: 'query', required: true, schema: { type: 'string' } },
    { name: 'state', in: 'query', required: true, schema: { type: 'string' } },
  ]);
  return {
    openapi: '3.1.0',
    info: { title: 'codex-k8s staff API', version: '1' },
    servers: [{ url: '/api/v1' }],
    paths,
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
      schemas: {
        Error: {
          type: 'object',
          required: ['error'],
          properties: { error: { type: 'object', required: ['code', 'message'], properties: { code: { enum: ['invalid_argument', 'unauthorized', 'forbidden', 'not_found', 'conflict', 'failed_precondition', 'unavailable', 'internal'] }, message: { type: 'string' } } } },
        },
        Answer: { type: 'object', description: 'the resource, or a list page {items, next_cursor}; a command answers its position (also in X-Codex-Position)' },
      },
    },
  };
}
