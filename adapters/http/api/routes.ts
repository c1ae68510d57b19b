import type { Context } from 'koa';
import type { Action } from '../../../domain/access/permissions.js';
import type { StrictObject } from './input.js';

export type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';

/**
 * A staff API endpoint: its path (koa-router syntax), the action of the RBAC matrix it needs, the
 * statuses it answers (the OpenAPI document is checked against these) and its handler.
 */
export interface StaffRoute {
  method: Method;
  path: string;
  action: Action;
  summary: string;
  /** Statuses beside the errors every staff endpoint may answer (400, 401, 429, 503). */
  statuses: readonly number[];
  /** The JSON body it reads, for the OpenAPI document. */
  body?: StrictObject;
  /** The query parameters it reads, for the OpenAPI document. */
  query?: StrictObject;
  handle: (ctx: Context) => Promise<void>;
}

export const route = (r: StaffRoute): StaffRoute => r;

/** The endpoint table as the README prints it (a test keeps the two the same). */
export function routesAsMarkdown(routes: readonly StaffRoute[]): string {
  return [
    '| method | path | needs | answers |',
    '| --- | --- | --- | --- |',
    ...routes.map((r) => `| ${r.method.toUpperCase()} | \`/api/v1${r.path.replace(/:(\w+)/g, '{$1}')}\` | \`${r.action}\` | ${r.statuses.join(', ')} |`),
  ].join('\n');
}
