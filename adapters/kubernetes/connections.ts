import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { IsomorphicFetchHttpLibrary, ResponseContext, wrapHttpLibrary, type HttpLibrary, type KubeConfig, type RequestContext } from '@kubernetes/client-node';
import { request, type Dispatcher as UndiciDispatcher } from 'undici';

const gunzipped = promisify(gunzip);

type Dispatcher = { close(): Promise<void> } | undefined;
type DispatcherFactory = (cluster: unknown, agentOptions: Record<string, unknown>) => Dispatcher;
type ApiConstructor = new (configuration: object) => object;

/**
 * How the worker's Kubernetes clients talk HTTP; the API, its types and its authentication stay the
 * library's. Two changes to @kubernetes/client-node 2.0, each found in profiles of bench:launch:
 * - it makes a new undici Agent for every API request, so no connection is ever reused: each
 *   request pays a TCP connect (and a TLS handshake on a real cluster). This keeps one dispatcher
 *   per cluster and set of TLS settings (a hash of them: an exec plugin that rotates client
 *   certificates gets a new one). Credentials sent as headers are applied per request as before.
 * - it sends through undici's `fetch`, whose WHATWG streams cost about four times the CPU of
 *   undici's `request` for the same request on the same dispatcher (300 and 60 µs here): the API
 *   clients this KubeConfig makes send string bodies through `request` (requestLibrary).
 * Returns a function that closes the kept dispatchers.
 */
export function reuseConnections(kc: KubeConfig): () => Promise<void> {
  const target = kc as unknown as { createDispatcher?: DispatcherFactory; makeApiClient: (type: ApiConstructor) => object };
  const makeApiClient = target.makeApiClient.bind(kc);
  const library = requestLibrary();
  // makeApiClient builds the configuration and hands it to the constructor: the subclass swaps its HTTP library.
  target.makeApiClient = (Type) => makeApiClient(class extends Type {
    constructor(configuration: object) {
      super({ ...configuration, httpApi: library });
    }
  });
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

/**
 * The client's HTTP library over undici's `request`: the same URL, method, headers, body, signal and
 * dispatcher as its own `fetch` library would send. A body that is not a string (a form) goes
 * through the library's own.
 */
export function requestLibrary(): HttpLibrary {
  const fallback = new IsomorphicFetchHttpLibrary();
  const viaRequest = wrapHttpLibrary({
    async send(context: RequestContext) {
      const response = await request(context.getUrl(), {
        method: context.getHttpMethod().toString() as UndiciDispatcher.HttpMethod,
        body: context.getBody() as string | undefined,
        // As fetch does: the API server compresses large answers (a list of every Job) when asked.
        headers: { 'accept-encoding': 'gzip', ...context.getHeaders() },
        signal: context.getSignal(),
        dispatcher: context.getDispatcher() as UndiciDispatcher | undefined,
      });
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(response.headers)) if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
      // Read whole at once: the client leaves some bodies unread (a 401's), and an unread body of
      // undici's request holds its connection for good (fetch's are let go when collected).
      const received = Buffer.from(await response.body.arrayBuffer());
      const bytes = headers['content-encoding'] === 'gzip' ? await gunzipped(received) : received;
      return new ResponseContext(response.statusCode, headers, {
        text: async () => bytes.toString('utf8'),
        binary: async () => bytes,
        stream: () => Readable.toWeb(Readable.from([bytes])) as ReadableStream<Uint8Array>,
      });
    },
  });
  return {
    send: (context) => {
      const body = context.getBody();
      return body === undefined || typeof body === 'string' ? viaRequest.send(context) : fallback.send(context);
    },
  };
}
