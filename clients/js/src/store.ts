// The device's local database: records, the queue of local changes not
// yet synced (one entry per record), and the pull cursor.

import type { WireRecord } from './wire.js'

/** A record as the device keeps it: the server's record and whether it is synced. */
export interface LocalRecord extends WireRecord {
  /** False while a local change of the record is not acknowledged by the server. */
  synced: boolean
}

/** A queued local change: the latest state of one record, with its queue sequence number. */
export interface PendingChange {
  model: string
  uid: string
  modify_at: string
  is_deleted: boolean
  data: unknown
  /** Grows with every local write; an acknowledgement only removes the sequence number it was sent with. */
  seq: number
}

/** Acknowledges one pushed change; record (when given) replaces the local one, as synced. */
export interface Ack {
  model: string
  uid: string
  seq: number
  record?: LocalRecord
}

/**
 * Store is the client's persistence seam. Every method is atomic: a
 * device that stops between two calls finds a consistent store.
 * [IndexedDBStore] is the implementation for browsers (and for Node with
 * an IndexedDB such as fake-indexeddb).
 */
export interface Store {
  /** Returns one record, tombstones included. */
  get(model: string, uid: string): Promise<LocalRecord | undefined>
  /** Lists the records of a model (every model when omitted), tombstones included. */
  list(model?: string): Promise<LocalRecord[]>
  /** Writes a record as a local, unsynced change and queues it, replacing a queued change of the same record; returns its sequence number. */
  putLocal(rec: Omit<LocalRecord, 'synced'>): Promise<number>
  /** Returns up to limit queued changes whose seq is above afterSeq, in seq order. */
  pending(afterSeq: number, limit: number): Promise<PendingChange[]>
  /** Counts the queued changes. */
  pendingCount(): Promise<number>
  /** Removes the acknowledged queue entries whose seq still matches, stores their records; returns how many were removed. */
  acknowledge(acks: Ack[]): Promise<number>
  /** Stores pulled records as synced, except those with a queued change; returns how many were stored. */
  applyRemote(recs: LocalRecord[]): Promise<number>
  /** Deletes records without queueing anything (after a reset, for records the server no longer has). */
  forget(keys: { model: string; uid: string }[]): Promise<void>
  cursor(): Promise<string>
  setCursor(cursor: string): Promise<void>
  /** Deletes everything (sign-out). */
  clear(): Promise<void>
}

const RECORDS = 'records'
const QUEUE = 'queue'
const META = 'meta'

/** Options of [IndexedDBStore.open]. */
export interface IndexedDBOptions {
  /** The database's name; keep one per signed-in user, e.g. `ferry-${userID}`. */
  name: string
  /** The IndexedDB factory (default globalThis.indexedDB). */
  indexedDB?: IDBFactory
  /** The IDBKeyRange of that IndexedDB (default globalThis.IDBKeyRange). */
  IDBKeyRange?: typeof IDBKeyRange
}

/** IndexedDBStore keeps the records, the queue and the cursor in an IndexedDB database. */
export class IndexedDBStore implements Store {
  private constructor(
    private readonly db: IDBDatabase,
    private readonly range: typeof IDBKeyRange,
  ) {}

  /** Opens (creating when needed) the database. */
  static async open(opts: IndexedDBOptions): Promise<IndexedDBStore> {
    const factory = opts.indexedDB ?? globalThis.indexedDB
    const range = opts.IDBKeyRange ?? globalThis.IDBKeyRange
    if (!factory || !range) throw new Error('ferry: IndexedDB is not available here')
    const db = await new Promise<IDBDatabase>((resolve, reject) => {
      const req = factory.open(opts.name, 1)
      req.onupgradeneeded = () => {
        const db = req.result
        const records = db.createObjectStore(RECORDS, { keyPath: ['model', 'uid'] })
        records.createIndex('model', 'model')
        const queue = db.createObjectStore(QUEUE, { keyPath: ['model', 'uid'] })
        queue.createIndex('seq', 'seq', { unique: true })
        db.createObjectStore(META)
      }
      req.onsuccess = () => resolve(req.result)
      req.onerror = () => reject(req.error)
      req.onblocked = () => reject(new Error(`ferry: IndexedDB ${opts.name} is blocked by another tab's older version`))
    })
    return new IndexedDBStore(db, range)
  }

  /** Closes the database. */
  close(): void {
    this.db.close()
  }

  // tx runs body in one transaction and resolves with what body set
  // once the transaction has committed. body issues requests with
  // callbacks only: awaiting inside a transaction would let it commit
  // early in some IndexedDB implementations.
  private tx<T>(stores: string[], mode: IDBTransactionMode, body: (t: IDBTransaction, out: (v: T) => void) => void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const t = this.db.transaction(stores, mode)
      let value: T
      t.oncomplete = () => resolve(value)
      t.onerror = () => reject(t.error)
      t.onabort = () => reject(t.error ?? new Error('ferry: IndexedDB transaction aborted'))
      body(t, (v) => {
        value = v
      })
    })
  }

  get(model: string, uid: string): Promise<LocalRecord | undefined> {
    return this.tx<LocalRecord | undefined>([RECORDS], 'readonly', (t, out) => {
      const r = t.objectStore(RECORDS).get([model, uid])
      r.onsuccess = () => out(r.result)
    })
  }

  list(model?: string): Promise<LocalRecord[]> {
    return this.tx<LocalRecord[]>([RECORDS], 'readonly', (t, out) => {
      const s = t.objectStore(RECORDS)
      const r = model === undefined ? s.getAll() : s.index('model').getAll(model)
      r.onsuccess = () => out(r.result)
    })
  }

  putLocal(rec: Omit<LocalRecord, 'synced'>): Promise<number> {
    return this.tx<number>([RECORDS, QUEUE, META], 'readwrite', (t, out) => {
      const meta = t.objectStore(META)
      const r = meta.get('seq')
      r.onsuccess = () => {
        const seq = ((r.result as number | undefined) ?? 0) + 1
        meta.put(seq, 'seq')
        t.objectStore(RECORDS).put({ ...rec, synced: false })
        const change: PendingChange = { model: rec.model, uid: rec.uid, modify_at: rec.modify_at, is_deleted: rec.is_deleted, data: rec.data, seq }
        t.objectStore(QUEUE).put(change)
        out(seq)
      }
    })
  }

  pending(afterSeq: number, limit: number): Promise<PendingChange[]> {
    return this.tx<PendingChange[]>([QUEUE], 'readonly', (t, out) => {
      const r = t.objectStore(QUEUE).index('seq').getAll(this.range.lowerBound(afterSeq, true), limit)
      r.onsuccess = () => out(r.result)
    })
  }

  pendingCount(): Promise<number> {
    return this.tx<number>([QUEUE], 'readonly', (t, out) => {
      const r = t.objectStore(QUEUE).count()
      r.onsuccess = () => out(r.result)
    })
  }

  acknowledge(acks: Ack[]): Promise<number> {
    return this.tx<number>([RECORDS, QUEUE], 'readwrite', (t, out) => {
      const queue = t.objectStore(QUEUE)
      const records = t.objectStore(RECORDS)
      let removed = 0
      out(0)
      for (const a of acks) {
        const r = queue.get([a.model, a.uid])
        r.onsuccess = () => {
          const q = r.result as PendingChange | undefined
          // Edited again while its push was in flight: the newer edit
          // stays queued, and the local record stays the newer one.
          if (!q || q.seq !== a.seq) return
          queue.delete([a.model, a.uid])
          if (a.record) records.put({ ...a.record, synced: true })
          else {
            const cur = records.get([a.model, a.uid])
            cur.onsuccess = () => {
              if (cur.result) records.put({ ...cur.result, synced: true })
            }
          }
          out(++removed)
        }
      }
    })
  }

  applyRemote(recs: LocalRecord[]): Promise<number> {
    return this.tx<number>([RECORDS, QUEUE], 'readwrite', (t, out) => {
      const queue = t.objectStore(QUEUE)
      const records = t.objectStore(RECORDS)
      let stored = 0
      out(0)
      for (const rec of recs) {
        const r = queue.getKey([rec.model, rec.uid])
        r.onsuccess = () => {
          // A queued local change wins locally until it is pushed; the
          // server's conflict policy decides then.
          if (r.result !== undefined) return
          records.put({ ...rec, synced: true })
          out(++stored)
        }
      }
    })
  }

  forget(keys: { model: string; uid: string }[]): Promise<void> {
    return this.tx<void>([RECORDS], 'readwrite', (t) => {
      for (const k of keys) t.objectStore(RECORDS).delete([k.model, k.uid])
    })
  }

  cursor(): Promise<string> {
    return this.tx<string>([META], 'readonly', (t, out) => {
      const r = t.objectStore(META).get('cursor')
      r.onsuccess = () => out((r.result as string | undefined) ?? '')
    })
  }

  setCursor(cursor: string): Promise<void> {
    return this.tx<void>([META], 'readwrite', (t) => {
      t.objectStore(META).put(cursor, 'cursor')
    })
  }

  clear(): Promise<void> {
    return this.tx<void>([RECORDS, QUEUE, META], 'readwrite', (t) => {
      for (const s of [RECORDS, QUEUE, META]) t.objectStore(s).clear()
    })
  }
}
