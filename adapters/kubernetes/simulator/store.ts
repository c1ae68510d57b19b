import { randomUUID } from 'node:crypto';
import { apiVersionOf, resourceKey, type ResourceKind } from './kinds.js';

export type KubeObject = {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    uid: string;
    resourceVersion: string;
    creationTimestamp: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    deletionTimestamp?: string;
    finalizers?: string[];
    ownerReferences?: { apiVersion: string; kind: string; name: string; uid: string; controller?: boolean; blockOwnerDeletion?: boolean }[];
    [key: string]: unknown;
  };
  spec?: any;
  status?: any;
  [key: string]: unknown;
};

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';
export interface StoredEvent { rv: number; key: string; namespace: string | undefined; type: WatchEventType; object: KubeObject }
export type Listener = (event: StoredEvent) => void;

/** A deep copy of a stored object (JSON only, as it came over the wire): callers get their own. Faster than structuredClone for these. */
export const copy = <T>(object: T): T => JSON.parse(JSON.stringify(object)) as T;

export const timestamp = (at = new Date()): string => at.toISOString().replace(/\.\d+Z$/, 'Z');

/**
 * The simulated etcd: objects by resource, one global resourceVersion counter, and a bounded history
 * of changes from which watches resume (older than that is 410 Gone, as with a compacted etcd).
 */
export class ObjectStore {
  private readonly objects = new Map<string, Map<string, KubeObject>>();
  private readonly history: StoredEvent[] = [];
  private readonly listeners = new Set<Listener>();
  private revision = 0;
  /** The highest resourceVersion whose event is no longer kept. */
  private compactedThrough = 0;

  constructor(private readonly historyLimit: number) {}

  get resourceVersion(): number {
    return this.revision;
  }

  get oldestResumable(): number {
    return this.compactedThrough;
  }

  get(r: ResourceKind, namespace: string | undefined, name: string): KubeObject | undefined {
    const found = this.bucket(r).get(this.id(namespace, name));
    return found && copy(found);
  }

  list(r: ResourceKind, namespace?: string): KubeObject[] {
    return [...this.bucket(r).values()]
      .filter((o) => namespace === undefined || o.metadata.namespace === namespace)
      .map((o) => copy(o));
  }

  /**
   * Stores a new object, filling in what the API server owns: uid, resourceVersion, creationTimestamp;
   * `withUid` adds the defaults that depend on the uid.
   */
  create(r: ResourceKind, body: any, withUid: (object: KubeObject) => KubeObject = (o) => o): KubeObject {
    const object: KubeObject = {
      ...body,
      apiVersion: apiVersionOf(r),
      kind: r.kind,
      metadata: { ...body.metadata, uid: randomUUID(), creationTimestamp: timestamp(), resourceVersion: '' },
    };
    return this.write(r, 'ADDED', withUid(object));
  }

  update(r: ResourceKind, object: KubeObject): KubeObject {
    return this.write(r, 'MODIFIED', object);
  }

  remove(r: ResourceKind, namespace: string | undefined, name: string): KubeObject | undefined {
    const current = this.bucket(r).get(this.id(namespace, name));
    if (!current) return undefined;
    this.bucket(r).delete(this.id(namespace, name));
    return this.record(r, 'DELETED', copy(current));
  }

  /** Events after `rv`, or undefined when some of them are no longer kept. */
  since(rv: number): StoredEvent[] | undefined {
    if (rv < this.compactedThrough) return undefined;
    return this.history.filter((e) => e.rv > rv);
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private write(r: ResourceKind, type: WatchEventType, object: KubeObject): KubeObject {
    const stored = copy(object);
    this.record(r, type, stored);
    this.bucket(r).set(this.id(stored.metadata.namespace, stored.metadata.name), stored);
    return copy(stored);
  }

  private record(r: ResourceKind, type: WatchEventType, object: KubeObject): KubeObject {
    this.revision += 1;
    object.metadata.resourceVersion = String(this.revision);
    // The event shares the object: what is stored is never changed in place (every write stores a
    // new copy, every read hands one out), and watchers only render it.
    const event: StoredEvent = { rv: this.revision, key: resourceKey(r), namespace: object.metadata.namespace, type, object };
    this.history.push(event);
    while (this.history.length > this.historyLimit) this.compactedThrough = this.history.shift()!.rv;
    for (const listener of this.listeners) listener(event);
    return object;
  }

  private bucket(r: ResourceKind): Map<string, KubeObject> {
    const key = resourceKey(r);
    let bucket = this.objects.get(key);
    if (!bucket) this.objects.set(key, (bucket = new Map()));
    return bucket;
  }

  private id(namespace: string | undefined, name: string): string {
    return `${namespace ?? ''}/${name}`;
  }
}
