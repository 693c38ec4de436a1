/**
 * The NATS port: the part of NATS the control plane uses, implemented over the real client and by the
 * simulator. (Provisional shape; the NATS seam's implementation may refine it.)
 */
export interface Msg {
  subject: string;
  data: Uint8Array;
  respond(data: Uint8Array): boolean;
}

export interface Subscription extends AsyncIterable<Msg> {
  unsubscribe(): void;
}

export interface KvEntry {
  key: string;
  value: Uint8Array | null;
  revision: number;
  operation: 'PUT' | 'DEL' | 'PURGE';
}

export interface KvWatch extends AsyncIterable<KvEntry> {
  stop(): void;
}

export interface Kv {
  create(key: string, value: Uint8Array): Promise<number>;
  put(key: string, value: Uint8Array): Promise<number>;
  get(key: string): Promise<KvEntry | null>;
  update(key: string, value: Uint8Array, expectedRevision: number): Promise<number>;
  delete(key: string, expectedRevision?: number): Promise<void>;
  keys(filter?: string): Promise<string[]>;
  watch(options: { key?: string; includeHistory?: boolean }): Promise<KvWatch>;
}

export interface Bus {
  publish(subject: string, data: Uint8Array): void;
  subscribe(subject: string, options?: { queue?: string }): Subscription;
  request(subject: string, data: Uint8Array, options: { timeoutMs: number }): Promise<Msg>;
  kv(bucket: string, options?: { ttlMs?: number; history?: number }): Promise<Kv>;
  close(): Promise<void>;
}
