// The device's local database: records, the queue of local changes not
// yet synced (one entry per record), and the pull cursor. A record is
// identified by its space, model and uid ("" is the personal space).

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
  /** The shared space the change is to; absent for the personal space. */
  space?: string
  modify_at: string
  is_deleted: boolean
  data: unknown
  /** The record's field times (see WireRecord.fields_modify_at). */
  fields_modify_at?: Record<string, string>
  /** Grows with every local write; an acknowledgement only removes the sequence number it was sent with. */
  seq: number
}

/** Acknowledges one pushed change; record (when given) replaces the local one, as synced. */
export interface Ack {
  model: string
  uid: string
  space?: string
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
  /** Returns one record of a space ("" or omitted: the personal space), tombstones included. */
  get(model: string, uid: string, space?: string): Promise<LocalRecord | undefined>
  /** Lists the records of a model (every model when omitted) of every space, tombstones included. */
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
  forget(keys: RecordKey[]): Promise<void>
  /** Deletes every record of a shared space and its queued changes, which it returns (the user lost the space). */
  dropSpace(space: string): Promise<PendingChange[]>
  /** Lists the shared spaces the store holds records or queued changes of. */
  spaces(): Promise<string[]>
  cursor(): Promise<string>
  setCursor(cursor: string): Promise<void>
  /** Deletes everything (sign-out). */
  clear(): Promise<void>
}

/** Names one record: its space (absent: personal), model and uid. */
export interface RecordKey {
  model: string
  uid: string
  space?: string
}

const RECORDS = 'records'
const QUEUE = 'queue'
const META = 'meta'
/** The schema's version: 2 keys records and queue by space, model and uid. */
const VERSION = 2

// Stored rows carry sk, the space's key ("" for the personal space), as
// the first part of their key: IndexedDB keys cannot have a missing part.
type Row<T> = T & { sk: string }

function keyOf(k: RecordKey): [string, string, string] {
  return [k.space ?? '', k.model, k.uid]
}

function row<T extends { space?: string }>(v: T): Row<T> {
  const out = { ...v, sk: v.space ?? '' }
  if (!out.space) delete out.space
  return out
}

function unrow<T>(r: Row<T> | undefined): T | undefined {
  if (!r) return undefined
  const { sk: _sk, ...rest } = r
  return rest as unknown as T
}

// createStores makes the schema of VERSION.
function createStores(db: IDBDatabase): void {
  const records = db.createObjectStore(RECORDS, { keyPath: ['sk', 'model', 'uid'] })
  records.createIndex('model', 'model')
  records.createIndex('sk', 'sk')
  const queue = db.createObjectStore(QUEUE, { keyPath: ['sk', 'model', 'uid'] })
  queue.createIndex('seq', 'seq', { unique: true })
  queue.createIndex('sk', 'sk')
}

// upgrade1 moves a version 1 database (records and queue keyed by model
// and uid, the personal space only) to VERSION in the upgrade's own
// transaction, keeping every record and queued change. The cursor is
// cleared: it was pulled under the personal-space filter, and the next
// pull starts over (keeping the queue, forgetting what it does not bring).
function upgrade1(db: IDBDatabase, t: IDBTransaction): void {
  const records = t.objectStore(RECORDS).getAll()
  records.onsuccess = () => {
    const queue = t.objectStore(QUEUE).getAll()
    queue.onsuccess = () => {
      db.deleteObjectStore(RECORDS)
      db.deleteObjectStore(QUEUE)
      createStores(db)
      for (const r of records.result as LocalRecord[]) t.objectStore(RECORDS).put(row(r))
      for (const q of queue.result as PendingChange[]) t.objectStore(QUEUE).put(row(q))
      t.objectStore(META).delete('cursor')
    }
  }
}

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
      const req = factory.open(opts.name, VERSION)
      req.onupgradeneeded = (ev) => {
        const db = req.result
        if (ev.oldVersion === 0) {
          createStores(db)
          db.createObjectStore(META)
        } else if (ev.oldVersion === 1) {
          upgrade1(db, req.transaction!)
        }
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

  get(model: string, uid: string, space?: string): Promise<LocalRecord | undefined> {
    return this.tx<LocalRecord | undefined>([RECORDS], 'readonly', (t, out) => {
      const r = t.objectStore(RECORDS).get(keyOf({ model, uid, space }))
      r.onsuccess = () => out(unrow<LocalRecord>(r.result))
    })
  }

  list(model?: string): Promise<LocalRecord[]> {
    return this.tx<LocalRecord[]>([RECORDS], 'readonly', (t, out) => {
      const s = t.objectStore(RECORDS)
      const r = model === undefined ? s.getAll() : s.index('model').getAll(model)
      r.onsuccess = () => out((r.result as Row<LocalRecord>[]).map((x) => unrow<LocalRecord>(x)!))
    })
  }

  putLocal(rec: Omit<LocalRecord, 'synced'>): Promise<number> {
    return this.tx<number>([RECORDS, QUEUE, META], 'readwrite', (t, out) => {
      const meta = t.objectStore(META)
      const r = meta.get('seq')
      r.onsuccess = () => {
        const seq = ((r.result as number | undefined) ?? 0) + 1
        meta.put(seq, 'seq')
        t.objectStore(RECORDS).put(row({ ...rec, synced: false }))
        const change: PendingChange = { model: rec.model, uid: rec.uid, modify_at: rec.modify_at, is_deleted: rec.is_deleted, data: rec.data, seq }
        if (rec.space) change.space = rec.space
        if (rec.fields_modify_at) change.fields_modify_at = rec.fields_modify_at
        t.objectStore(QUEUE).put(row(change))
        out(seq)
      }
    })
  }

  pending(afterSeq: number, limit: number): Promise<PendingChange[]> {
    return this.tx<PendingChange[]>([QUEUE], 'readonly', (t, out) => {
      const r = t.objectStore(QUEUE).index('seq').getAll(this.range.lowerBound(afterSeq, true), limit)
      r.onsuccess = () => out((r.result as Row<PendingChange>[]).map((x) => unrow<PendingChange>(x)!))
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
        const k = keyOf(a)
        const r = queue.get(k)
        r.onsuccess = () => {
          const q = r.result as PendingChange | undefined
          // Edited again while its push was in flight: the newer edit
          // stays queued, and the local record stays the newer one.
          if (!q || q.seq !== a.seq) return
          queue.delete(k)
          if (a.record) records.put(row({ ...a.record, synced: true }))
          else {
            const cur = records.get(k)
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
        const r = queue.getKey(keyOf(rec))
        r.onsuccess = () => {
          // A queued local change wins locally until it is pushed; the
          // server's conflict policy decides then.
          if (r.result !== undefined) return
          records.put(row({ ...rec, synced: true }))
          out(++stored)
        }
      }
    })
  }

  forget(keys: RecordKey[]): Promise<void> {
    return this.tx<void>([RECORDS], 'readwrite', (t) => {
      for (const k of keys) t.objectStore(RECORDS).delete(keyOf(k))
    })
  }

  dropSpace(space: string): Promise<PendingChange[]> {
    if (!space) return Promise.reject(new Error('ferry: dropSpace needs a shared space'))
    return this.tx<PendingChange[]>([RECORDS, QUEUE], 'readwrite', (t, out) => {
      const queue = t.objectStore(QUEUE)
      const q = queue.index('sk').getAll(space)
      q.onsuccess = () => {
        out((q.result as Row<PendingChange>[]).map((x) => unrow<PendingChange>(x)!).sort((a, b) => a.seq - b.seq))
        for (const c of q.result as Row<PendingChange>[]) queue.delete([c.sk, c.model, c.uid])
      }
      const records = t.objectStore(RECORDS)
      const r = records.index('sk').getAllKeys(space)
      r.onsuccess = () => {
        for (const k of r.result) records.delete(k)
      }
    })
  }

  spaces(): Promise<string[]> {
    return this.tx<string[]>([RECORDS, QUEUE], 'readonly', (t, out) => {
      const found = new Set<string>()
      let left = 2
      for (const s of [RECORDS, QUEUE]) {
        // The index's unique keys, each read once.
        const c = t.objectStore(s).index('sk').openKeyCursor(this.range.lowerBound('', true), 'nextunique')
        c.onsuccess = () => {
          const cur = c.result
          if (cur) {
            found.add(cur.key as string)
            cur.continue()
          } else if (--left === 0) out([...found].sort())
        }
      }
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
