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

/**
 * Freezes what is not frozen yet: a stored object is never changed in place (a change stores a new
 * object, sharing the parts it keeps, which are frozen already), so readers and watch events can
 * share it without copies, and a change in place anywhere throws at once instead of altering history.
 */
function deepFreeze<T>(value: T): T {
  if (value === null || typeof value !== 'object' || Object.isFrozen(value)) return value;
  Object.freeze(value);
  for (const inner of Object.values(value)) deepFreeze(inner);
  return value;
}

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

  /** The stored object itself (frozen): a change is made on a new object, given to `update`. */
  get(r: ResourceKind, namespace: string | undefined, name: string): KubeObject | undefined {
    return this.bucket(r).get(this.id(namespace, name));
  }

  list(r: ResourceKind, namespace?: string): KubeObject[] {
    const all = [...this.bucket(r).values()];
    return namespace === undefined ? all : all.filter((o) => o.metadata.namespace === namespace);
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
    return this.record(r, 'DELETED', current);
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
    const stored = this.record(r, type, object);
    this.bucket(r).set(this.id(stored.metadata.namespace, stored.metadata.name), stored);
    return stored;
  }

  /** The object at the next resourceVersion (a new one: the one given may share its metadata with an older version), frozen, and its event. */
  private record(r: ResourceKind, type: WatchEventType, given: KubeObject): KubeObject {
    this.revision += 1;
    const object = deepFreeze({ ...given, metadata: { ...given.metadata, resourceVersion: String(this.revision) } });
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
