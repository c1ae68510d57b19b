import { createHash } from 'node:crypto';
import type { KubeConfig } from '@kubernetes/client-node';

type Dispatcher = { close(): Promise<void> } | undefined;
type DispatcherFactory = (cluster: unknown, agentOptions: Record<string, unknown>) => Dispatcher;

/**
 * @kubernetes/client-node 2.0 makes a new undici Agent for every API request, so no connection is
 * ever reused: each request pays a TCP connect (and a TLS handshake on a real cluster). This keeps
 * one dispatcher per cluster and set of TLS settings (a hash of them: an exec plugin that rotates
 * client certificates gets a new one). Credentials sent as headers are applied per request as before.
 * Returns a function that closes the kept dispatchers.
 */
export function reuseConnections(kc: KubeConfig): () => Promise<void> {
  const target = kc as unknown as { createDispatcher?: DispatcherFactory };
  // A client version without this method makes its dispatchers some other way: leave it alone.
  if (typeof target.createDispatcher !== 'function') return async () => {};
  const create = target.createDispatcher.bind(kc);
  const kept = new Map<string, Dispatcher>();
  target.createDispatcher = (cluster, agentOptions) => {
    const key = createHash('sha256')
      .update(JSON.stringify([cluster, Object.entries(agentOptions).map(([k, v]) => [k, Buffer.isBuffer(v) ? v.toString('base64') : v])]))
      .digest('hex');
    if (!kept.has(key)) kept.set(key, create(cluster, agentOptions));
    return kept.get(key);
  };
  return async () => {
    const dispatchers = [...kept.values()];
    kept.clear();
    await Promise.all(dispatchers.map((d) => d?.close().catch(() => {})));
  };
}
