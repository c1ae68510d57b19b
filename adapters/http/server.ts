import Koa from 'koa';
import Router from '@koa/router';
import type pg from 'pg';
import type { Logger } from '../log.js';
import { ApiError, errorModel } from './errors.js';
import type { Metrics } from './metrics.js';

const READY_TIMEOUT_MS = 900;

/** The HTTP surface: health, readiness, metrics, and the routes the caller mounts. */
export function createApp(deps: { primary: pg.Pool; metrics: Metrics; log: Logger; mount: (router: Router) => void; trustedProxyHops?: number }) {
  // Paths are case-sensitive, as the OpenAPI document writes them: /API/V1/ME is no endpoint.
  const router = new Router({ sensitive: true });
  router.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok' };
  });
  router.get('/readyz', async (ctx) => {
    // Reachable, and migrated (the read-model tables exist), within a second: a probe that hangs
    // behind a busy pool is no answer.
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('timed out')), READY_TIMEOUT_MS)));
    try {
      await Promise.race([deps.primary.query('SELECT 1 FROM projection_checkpoints LIMIT 1'), timeout]);
      ctx.body = { status: 'ready' };
    } catch {
      ctx.status = 503;
      ctx.body = { status: 'not_ready' };
    } finally {
      clearTimeout(timer);
    }
  });
  router.get('/metrics', async (ctx) => {
    ctx.type = deps.metrics.registry.contentType;
    ctx.body = await deps.metrics.registry.metrics();
  });
  deps.mount(router);
  // Behind proxies (CODEXK8S_TRUSTED_PROXY_HOPS) the client's address comes from X-Forwarded-For,
  // believing only the entries those proxies wrote: the leftmost ones are the client's own word.
  const hops = deps.trustedProxyHops ?? 0;
  const app = new Koa({ proxy: hops > 0, maxIpsCount: hops });
  app.use(errorModel(deps.log));
  // What no route answered, in the error model rather than koa's text: a path no route has is 404;
  // one that other methods have is 405 with Allow, a method no route uses is 501 (both found by
  // allowedMethods once the routes have passed).
  app.use(async (ctx, next) => {
    await next();
    if (ctx.body !== undefined && ctx.body !== null) return;
    const allow = ctx.response.get('Allow');
    if (ctx.status === 405) throw new ApiError(405, 'invalid_argument', `${ctx.method} is not allowed here; allowed: ${allow}`, { Allow: allow });
    if (ctx.status === 501) throw new ApiError(501, 'invalid_argument', `${ctx.method} is not a method this API takes`);
    if (ctx.status === 404) throw new ApiError(404, 'not_found', 'no such endpoint');
  });
  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}
