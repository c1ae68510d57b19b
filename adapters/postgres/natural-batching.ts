/**
 * Natural batching for the event store: up to `maxInFlight` statements run at once; what callers
 * submit while they are all busy waits and goes out together in the next one. A lone caller is sent
 * at once, so there is no timer and no added latency when the load is light; under load one
 * statement serves many callers: one commit and one WAL flush for appends (group commit), one round
 * trip for stream reads.
 * For appends, a stream one request writes is in no other request of its batch: the statement
 * checks every stream's version before it writes, so the other would be checked against the version
 * before the first one's write. Streams that requests only read (guards) may be shared.
 */
export interface NaturalBatchingOptions<R, T> {
  maxInFlight: number;
  /** The batch is closed when it reaches this weight (for example events). */
  maxWeight: number;
  weight: (request: R) => number;
  /** The streams a request writes and guards, for appends; reads leave it out (they never clash). */
  streams?: (request: R) => { written: readonly string[]; guarded: readonly string[] };
  /** Runs one batch; settles each request of it, in order. */
  run: (batch: R[]) => Promise<PromiseSettledResult<T>[]>;
}

interface Waiting<R, T> {
  request: R;
  resolve: (value: T) => void;
  reject: (reason: unknown) => void;
}

const unclashing = { written: [], guarded: [] } as const;

export function naturalBatching<R, T>(options: NaturalBatchingOptions<R, T>): (request: R) => Promise<T> {
  const queue: Waiting<R, T>[] = [];
  let inFlight = 0;

  function takeBatch(): Waiting<R, T>[] {
    const batch: Waiting<R, T>[] = [];
    const written = new Set<string>();
    const guarded = new Set<string>();
    let weight = 0;
    for (let i = 0; i < queue.length && (batch.length === 0 || weight < options.maxWeight); ) {
      const waiting = queue[i]!;
      const own = options.streams?.(waiting.request) ?? unclashing;
      const w = options.weight(waiting.request);
      const clash = own.written.some((s) => written.has(s) || guarded.has(s)) || own.guarded.some((s) => written.has(s));
      if (clash || (batch.length > 0 && weight + w > options.maxWeight)) {
        i++; // stays queued, in order, for a later batch
        continue;
      }
      for (const s of own.written) written.add(s);
      for (const s of own.guarded) guarded.add(s);
      weight += w;
      batch.push(waiting);
      queue.splice(i, 1);
    }
    return batch;
  }

  function pump(): void {
    while (inFlight < options.maxInFlight && queue.length > 0) {
      const batch = takeBatch();
      inFlight++;
      options
        .run(batch.map((w) => w.request))
        .then(
          (settled) => settled.forEach((s, i) => (s.status === 'fulfilled' ? batch[i]!.resolve(s.value) : batch[i]!.reject(s.reason))),
          (error: unknown) => batch.forEach((w) => w.reject(error)),
        )
        .finally(() => {
          inFlight--;
          pump();
        });
    }
  }

  return (request) =>
    new Promise<T>((resolve, reject) => {
      queue.push({ request, resolve, reject });
      pump();
    });
}
