// The protocol v1 client: push the queue, pull page by page, retry,
// reset, and sync on the realtime plugin's live hints.

import type { LocalRecord, PendingChange, Store, Ack } from './store.js'
import { Codes, maxPullURL, type ErrorBody, type FieldError, type PullRequest, type PullResponse, type PushRequest, type PushResponse, type StreamToken, type WireRecord, type WireResult } from './wire.js'

/** FerryError is a non-2xx answer of the server, in the protocol's error shape. */
export class FerryError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: FieldError[] = [],
    readonly retryAfterMs = 0,
  ) {
    super(message)
    this.name = 'FerryError'
  }

  /** A 429 or a 5xx: worth trying again later. */
  get temporary(): boolean {
    return this.status === 429 || this.status >= 500
  }
}

/** OfflineError: the request did not reach the server (no network, DNS, CORS, connection refused). */
export class OfflineError extends Error {
  constructor(message: string, readonly cause?: unknown) {
    super(message)
    this.name = 'OfflineError'
  }
}

/** Bounds the retries of one request after a network error, a 429 or a 5xx. */
export interface RetryOptions {
  /** Tries per request, the first included (default 5; 1 disables retries). */
  maxAttempts?: number
  /** Bound of the wait before the second try, in ms (default 250); doubles each try, with full jitter. */
  baseDelayMs?: number
  /** Cap of any wait, in ms (default 15000); Retry-After can only lengthen a wait, up to this. */
  maxDelayMs?: number
}

/** A pushed change the server refused (rejected or forbidden); it has left the queue. */
export interface Rejection {
  change: PendingChange
  status: 'rejected' | 'forbidden'
  code?: string
  errors: FieldError[]
}

/** Counts what one [Client.sync] did. */
export interface SyncResult {
  pushed: number
  applied: number
  stale: number
  rejected: number
  forbidden: number
  /** Changes edited again while their push was in flight; still queued. */
  requeued: number
  pulled: number
  /** Pulled records written to the store (one with a queued local change is not). */
  stored: number
  /** The server required a pull from the start (410). */
  reset: boolean
  /** Spaces whose records the device dropped (the user lost them), counting a sweep of stray ones as one. */
  dropped: number
}

/** The live stream's state, as reported to [ClientOptions.onState]. */
export type StreamState = 'off' | 'connecting' | 'up' | 'down' | 'unsupported'

/** What [ClientOptions.onState] reports. */
export interface ClientState {
  syncing: boolean
  /** The last sync's error, cleared by a sync that succeeds. */
  lastError?: Error
  lastSyncAt?: Date
  stream: StreamState
  pending: number
}

/** Configures a [Client]. */
export interface ClientOptions {
  /** The server's origin, e.g. "https://api.example.com"; "" means this page's origin. */
  baseURL: string
  /** Where the protocol is mounted (default "/sync"). */
  mount?: string
  /** The bearer token, or a function returning it (called per request). */
  token: string | (() => string | Promise<string>)
  /** The signed-in user's id: records pushed must come back owned by it. */
  owner: string
  /** This device's id, stable across restarts; sent as device_id on pushes and pulls. */
  deviceID: string
  store: Store
  retry?: RetryOptions
  /** Records per pull page (default: the server's, 500). */
  pullLimit?: number
  /** Changes per push (default 500; a 413 halves it). */
  maxBatch?: number
  /** Reports changes the server refused. */
  onRejected?: (r: Rejection) => void
  /** Called after the store changed: a local write, an acknowledgement, a pull. */
  onChange?: () => void
  /** Called whenever [ClientState] changes. */
  onState?: (s: ClientState) => void
  /** The fetch to use (default globalThis.fetch). */
  fetch?: typeof fetch
  /** The EventSource to use for the live stream (default globalThis.EventSource; none: no stream). */
  EventSource?: typeof EventSource
  /** Whether the device has a network: a sync fails at once without retries when false (default navigator.onLine where it exists). */
  isOnline?: () => boolean
  /**
   * Sends request bodies of 1 KiB or more gzip-compressed (CompressionStream)
   * once an answer of the server has said it takes them (Accept-Encoding
   * naming gzip); a 415 to a compressed body turns it off for good
   * (default true). Answers are decompressed by fetch itself.
   */
  compressRequests?: boolean
}

/** Options of [Client.start]. */
export interface StartOptions {
  /** Period of syncs while the live stream is down or absent, in ms (default 30000). */
  intervalMs?: number
  /** Period of safety-net syncs while the stream is up, in ms (default 10 × intervalMs). */
  streamIntervalMs?: number
  /** Wait after a local write or a hint before syncing, in ms (default 100). */
  debounceMs?: number
  /** false: never open the live stream (default true). */
  stream?: boolean
}

const newSyncResult = (): SyncResult => ({ pushed: 0, applied: 0, stale: 0, rejected: 0, forbidden: 0, requeued: 0, pulled: 0, stored: 0, reset: false, dropped: 0 })

/** A new random record id (a UUID). */
export function newUID(): string {
  return globalThis.crypto.randomUUID()
}

/**
 * Client syncs a [Store] with a Ferry server over protocol v1. Writes go
 * to the store and its queue first ([Client.put], [Client.delete]), so
 * they work offline; [Client.sync] pushes the queue and pulls what the
 * server has; [Client.start] syncs in the background, on the live stream's
 * hints when the server offers them. Syncs never overlap.
 */
export class Client {
  private readonly base: string
  private readonly fetch: typeof fetch
  private readonly retry: Required<RetryOptions>
  private readonly maxBatch: number
  private running: Promise<SyncResult> | null = null
  private again = false
  private state: ClientState = { syncing: false, stream: 'off', pending: 0 }
  private serverTakesGzip = false
  private gzipRefused = false
  private noPullBody = false
  private loop: Loop | null = null

  constructor(private readonly opts: ClientOptions) {
    if (!opts.owner) throw new Error('ferry: ClientOptions.owner is required')
    if (!opts.deviceID) throw new Error('ferry: ClientOptions.deviceID is required')
    this.base = opts.baseURL.replace(/\/+$/, '') + (opts.mount ?? '/sync')
    this.fetch = opts.fetch ?? globalThis.fetch.bind(globalThis)
    this.retry = { maxAttempts: 5, baseDelayMs: 250, maxDelayMs: 15000, ...opts.retry }
    this.maxBatch = opts.maxBatch ?? 500
  }

  /** The store the client syncs. */
  get store(): Store {
    return this.opts.store
  }

  /**
   * Writes a record locally and queues it; it works offline. With space
   * (a shared space's uid) the record is that space's; without, the
   * user's personal space's.
   */
  async put(model: string, uid: string, data: unknown, space?: string): Promise<LocalRecord> {
    return this.write(model, uid, data, false, space)
  }

  /** Deletes a record of the personal space, or of space, locally (a tombstone) and queues it. */
  async delete(model: string, uid: string, space?: string): Promise<LocalRecord> {
    const cur = await this.opts.store.get(model, uid, space)
    return this.write(model, uid, cur?.data ?? null, true, space)
  }

  /** Lists a model's records that are not deleted, of the personal space or of space. */
  async list(model: string, space?: string): Promise<LocalRecord[]> {
    const want = space ?? ''
    return (await this.opts.store.list(model)).filter((r) => !r.is_deleted && (r.space ?? '') === want)
  }

  /** Lists a model's records that are not deleted, of every space the device holds (each with its space). */
  async listAll(model: string): Promise<LocalRecord[]> {
    return (await this.opts.store.list(model)).filter((r) => !r.is_deleted)
  }

  /**
   * Creates a shared space (the ferry.Space record, in the space itself):
   * the server makes this user its first admin at the push. Space ids are
   * global on a server, so the default is a random one.
   */
  async createSpace(data: { name?: string } = {}, uid: string = newUID()): Promise<string> {
    await this.put('ferry.Space', uid, data, uid)
    return uid
  }

  /** Adds a member to a shared space, or changes their role (admins only; refused changes go to onRejected). */
  async setMember(space: string, user: string, role: 'reader' | 'writer' | 'admin'): Promise<LocalRecord> {
    return this.put('ferry.Member', user, { role }, space)
  }

  /** Removes a member of a shared space (an admin), or leaves it (one's own uid). */
  async removeMember(space: string, user: string): Promise<LocalRecord> {
    return this.delete('ferry.Member', user, space)
  }

  /** The shared spaces this device holds, as their ferry.Space records. */
  async spaces(): Promise<LocalRecord[]> {
    return (await this.listAll('ferry.Space')).filter((r) => r.space)
  }

  private async write(model: string, uid: string, data: unknown, deleted: boolean, space?: string): Promise<LocalRecord> {
    const cur = await this.opts.store.get(model, uid, space)
    // modify_at orders a record's edits for the conflict policy: two
    // edits within one millisecond must still be in order.
    let at = Date.now()
    if (cur) at = Math.max(at, Date.parse(cur.modify_at) + 1)
    const owner = space ? spaceOwner(space) : this.opts.owner
    const rec: Omit<LocalRecord, 'synced'> = { model, uid, owner, modify_at: new Date(at).toISOString(), is_deleted: deleted, version: cur?.version, data }
    if (space) rec.space = space
    const times = editedFieldTimes(cur, rec)
    if (times) rec.fields_modify_at = times
    await this.opts.store.putLocal(rec)
    this.changed()
    this.loop?.soon()
    return { ...rec, synced: false }
  }

  /** Current state (syncing, last error, stream, queued changes). */
  getState(): ClientState {
    return { ...this.state }
  }

  private setState(patch: Partial<ClientState>): void {
    this.state = { ...this.state, ...patch }
    this.opts.onState?.(this.getState())
  }

  private changed(): void {
    this.opts.onChange?.()
    void this.opts.store.pendingCount().then((pending) => {
      if (pending !== this.state.pending) this.setState({ pending })
    })
  }

  /**
   * Pushes the queue, then pulls everything after the stored cursor. A
   * call during a sync waits for it and runs once more after it, so that
   * nothing written meanwhile waits for the next trigger. On error what
   * was acknowledged stays so and the rest stays queued: calling sync
   * again is always safe.
   */
  sync(): Promise<SyncResult> {
    if (this.running) {
      this.again = true
      return this.running
    }
    this.running = (async () => {
      this.setState({ syncing: true })
      try {
        let res: SyncResult
        do {
          this.again = false
          res = newSyncResult()
          await this.push(res)
          await this.pull(res)
        } while (this.again)
        this.setState({ syncing: false, lastError: undefined, lastSyncAt: new Date() })
        return res
      } catch (err) {
        this.setState({ syncing: false, lastError: err as Error })
        throw err
      } finally {
        this.running = null
        this.changed()
        this.loop?.synced()
      }
    })()
    return this.running
  }

  private async push(res: SyncResult): Promise<void> {
    const store = this.opts.store
    let after = 0
    let batch = this.maxBatch
    for (;;) {
      const pending = await store.pending(after, batch)
      if (pending.length === 0) return
      const cursor = await store.cursor()
      let answer: { results: WireResult[]; cursor?: string }
      try {
        answer = await this.pushBatch(pending, cursor)
      } catch (err) {
        if (!(err instanceof FerryError && err.code === Codes.tooLarge)) throw err
        if (pending.length > 1) {
          batch = Math.max(1, Math.floor(pending.length / 2))
          continue
        }
        // One change alone is too large: it can never be stored.
        const p = pending[0]!
        await store.acknowledge([{ model: p.model, uid: p.uid, space: p.space, seq: p.seq }])
        res.rejected++
        this.opts.onRejected?.({ change: p, status: 'rejected', code: Codes.tooLarge, errors: [{ path: '', message: err.message }] })
        after = p.seq
        continue
      }
      res.pushed += pending.length
      await this.acknowledge(pending, answer.results, res)
      // The server moved the cursor past this push's own writes (only
      // when that skips nothing), so the pull does not bring them back.
      if (answer.cursor && answer.cursor !== cursor) await store.setCursor(answer.cursor)
      after = pending[pending.length - 1]!.seq
    }
  }

  private async pushBatch(pending: PendingChange[], cursor: string): Promise<PushResponse> {
    const body: PushRequest = {
      device_id: this.opts.deviceID,
      changes: pending.map((p) => ({
        op_id: String(p.seq),
        model: p.model,
        uid: p.uid,
        ...(p.space ? { space: p.space } : {}),
        modify_at: p.modify_at,
        is_deleted: p.is_deleted,
        // A tombstone travels without data: a delete cannot be refused
        // over a field's value.
        ...(p.is_deleted ? {} : { data: p.data }),
        ...(p.fields_modify_at ? { fields_modify_at: p.fields_modify_at } : {}),
      })),
    }
    if (cursor) body.cursor = cursor
    let out: PushResponse
    try {
      out = await this.request<PushResponse>('POST', '/push', undefined, body)
    } catch (err) {
      // A cursor the server no longer understands must not block the
      // push: send it without; the pull then starts over.
      if (err instanceof FerryError && err.code === Codes.invalidCursor && cursor) return this.pushBatch(pending, '')
      throw err
    }
    if (!Array.isArray(out.results) || out.results.length !== pending.length) {
      throw new Error(`ferry: the server answered ${out.results?.length} results for ${pending.length} changes`)
    }
    out.results.forEach((r, i) => {
      const ch = body.changes[i]!
      if (r.model !== ch.model || r.uid !== ch.uid || (r.op_id !== undefined && r.op_id !== ch.op_id)) {
        throw new Error(`ferry: result ${i} is for ${r.model}/${r.uid}, not for the change sent, ${ch.model}/${ch.uid}`)
      }
      const owner = ch.space ? spaceOwner(ch.space) : this.opts.owner
      if (r.record?.owner && r.record.owner !== owner) {
        throw new Error(`ferry: ${ch.model}/${ch.uid} is owned by ${r.record.owner} on the server, not by ${owner}: is ClientOptions.owner the signed-in user?`)
      }
    })
    return out
  }

  private async acknowledge(pending: PendingChange[], results: WireResult[], res: SyncResult): Promise<void> {
    const acks: Ack[] = []
    const refused: Rejection[] = []
    results.forEach((r, i) => {
      const p = pending[i]!
      switch (r.status) {
        case 'applied':
        case 'stale':
          res[r.status]++
          acks.push({ model: p.model, uid: p.uid, space: p.space, seq: p.seq, record: r.record ? local(r.record) : undefined })
          break
        case 'rejected':
        case 'forbidden':
          res[r.status]++
          acks.push({ model: p.model, uid: p.uid, space: p.space, seq: p.seq })
          refused.push({ change: p, status: r.status, code: r.code, errors: r.errors ?? [] })
          break
        default:
        // A status this client does not know: keep the change queued.
      }
    })
    const removed = await this.opts.store.acknowledge(acks)
    res.requeued += acks.length - removed
    for (const r of refused) this.opts.onRejected?.(r)
  }

  private async pull(res: SyncResult): Promise<void> {
    const store = this.opts.store
    let cursor = await store.cursor()
    // A pull from the start notes what it receives and then forgets the
    // synced records it did not: the server no longer has them.
    let seen: Set<string> | null = cursor === '' ? new Set() : null
    let last: PullResponse
    for (;;) {
      let page: PullResponse
      try {
        // Every space the user reads: the store keys records by space,
        // model and uid. device_id only names the device to the server's
        // observers (the inspector); it changes nothing in the answer.
        page = await this.pullPage(cursor)
      } catch (err) {
        if (seen === null && cursor !== '' && err instanceof FerryError && (err.code === Codes.resetRequired || err.code === Codes.invalidCursor)) {
          // The stored cursor stays until the pull from the start is
          // complete: an interrupted one meets the same answer next time.
          res.reset = true
          cursor = ''
          seen = new Set()
          continue
        }
        throw err
      }
      const recs = page.changes.map(local)
      for (const r of recs) seen?.add(key(r))
      res.stored += await store.applyRemote(recs)
      res.pulled += recs.length
      if (recs.length > 0) this.changed()
      if (page.has_more && (!page.cursor || page.cursor === cursor)) throw new Error('ferry: the server said has_more without moving the cursor')
      if (page.cursor) cursor = page.cursor
      if (!page.has_more) {
        last = page
        break
      }
    }
    // Spaces the user lost: their records go, and so do their unsynced
    // changes, which the server would refuse; each is reported, never
    // dropped silently. The last page says so until its cursor is stored.
    for (const space of last.removed ?? []) {
      const dropped = await store.dropSpace(space)
      res.dropped++
      for (const change of dropped) {
        res.forbidden++
        this.opts.onRejected?.({ change, status: 'forbidden', errors: [{ path: '/space', message: 'you no longer read this space' }] })
      }
      this.changed()
    }
    if (seen) {
      const gone = (await store.list()).filter((r) => r.synced && !seen!.has(key(r)))
      if (gone.length > 0) {
        await store.forget(gone)
        this.changed()
      }
    }
    await store.setCursor(cursor)
    // The stored cursor covers these spaces alone: the synced records of
    // any other (part of a space a cut pull brought, then lost before any
    // pull could say so) would never be named again.
    const covered = new Set(last.spaces ?? [])
    const strays = new Set((await store.spaces()).filter((s) => !covered.has(s)))
    const stray = strays.size === 0 ? [] : (await store.list()).filter((r) => r.space && r.synced && strays.has(r.space))
    if (stray.length > 0) {
      await store.forget(stray)
      res.dropped++
      this.changed()
    }
  }

  /** Sends one request to a route under the mount point, retrying as RetryOptions allow. */
  // pullPage asks for one page: as GET, or as POST /sync/pull when the
  // cursor (a position per space) would make the URL too long for proxies.
  private async pullPage(cursor: string): Promise<PullResponse> {
    const q: Record<string, string> = { cursor, device_id: this.opts.deviceID }
    if (this.opts.pullLimit) q.limit = String(this.opts.pullLimit)
    if (!this.noPullBody && new URLSearchParams(q).toString().length > maxPullURL) {
      const body: PullRequest = { cursor, device_id: this.opts.deviceID }
      if (this.opts.pullLimit) body.limit = this.opts.pullLimit
      try {
        return await this.request<PullResponse>('POST', '/pull', undefined, body)
      } catch (err) {
        if (!(err instanceof FerryError && (err.code === Codes.notFound || err.code === Codes.methodNotAllowed))) throw err
        this.noPullBody = true // a server from before POST /sync/pull
      }
    }
    return this.request<PullResponse>('GET', '/pull', q)
  }

  async request<T>(method: string, path: string, query?: Record<string, string>, body?: unknown): Promise<T> {
    let url = this.base + path
    if (query) url += '?' + new URLSearchParams(query).toString()
    for (let attempt = 1; ; attempt++) {
      let err: Error
      try {
        return await this.once<T>(method, url, body)
      } catch (e) {
        err = e as Error
      }
      const retryable = err instanceof OfflineError || (err instanceof FerryError && err.temporary)
      // Offline, a retry cannot succeed; the loop syncs when the network is back.
      if (!retryable || attempt >= this.retry.maxAttempts || !this.online()) throw err
      const bound = Math.min(this.retry.maxDelayMs, this.retry.baseDelayMs * 2 ** (attempt - 1))
      let wait = Math.random() * bound
      if (err instanceof FerryError && err.retryAfterMs > wait) wait = Math.min(err.retryAfterMs, this.retry.maxDelayMs)
      await sleep(wait)
    }
  }

  private compressible(payload: string): boolean {
    return (this.opts.compressRequests ?? true) && this.serverTakesGzip && !this.gzipRefused && payload.length >= 1024 && typeof CompressionStream !== 'undefined'
  }

  private online(): boolean {
    if (this.opts.isOnline) return this.opts.isOnline()
    return globalThis.navigator?.onLine ?? true
  }

  private async token(): Promise<string> {
    const t = this.opts.token
    return typeof t === 'function' ? t() : t
  }

  private async once<T>(method: string, url: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { Accept: 'application/json' }
    const token = await this.token()
    if (token) headers.Authorization = `Bearer ${token}`
    let payload: string | Uint8Array | undefined
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json'
      payload = JSON.stringify(body)
      if (this.compressible(payload)) {
        payload = await gzip(payload)
        headers['Content-Encoding'] = 'gzip'
      }
    }
    let resp: Response
    try {
      resp = await this.fetch(url, { method, headers, body: payload as BodyInit | undefined })
    } catch (err) {
      throw new OfflineError(`ferry: ${method} ${url}: ${(err as Error).message}`, err)
    }
    if (resp.status === 415 && headers['Content-Encoding']) {
      // Something on the way refuses compressed bodies: send them plain.
      this.gzipRefused = true
      throw new FerryError(503, Codes.unavailable, 'ferry: a compressed body was refused; retrying uncompressed')
    }
    const takes = resp.headers.get('Accept-Encoding')
    if (takes !== null) this.serverTakesGzip = /\bgzip\b/i.test(takes)
    let text: string
    try {
      text = await resp.text()
    } catch (err) {
      throw new OfflineError(`ferry: ${method} ${url}: reading the answer: ${(err as Error).message}`, err)
    }
    if (!resp.ok) throw errorOf(resp, text)
    try {
      return JSON.parse(text) as T
    } catch {
      throw new Error(`ferry: ${method} ${url}: the answer is not JSON`)
    }
  }

  /**
   * Syncs in the background until [Client.stop]: now, soon after every
   * local write, when the browser comes back online, periodically, and on
   * the live stream's hints when the server offers the stream (the
   * realtime plugin). Errors are reported through onState's lastError.
   */
  start(opts: StartOptions = {}): void {
    if (this.loop) return
    this.loop = new Loop(this, opts, this.opts.EventSource ?? globalThis.EventSource, (stream) => this.setState({ stream }))
  }

  /** Stops the background loop and closes the live stream. */
  stop(): void {
    this.loop?.stop()
    this.loop = null
    this.setState({ stream: 'off' })
  }

  /** The stream's URL with a fresh stream token, or null when the server has no stream (404). */
  async streamURL(): Promise<string | null> {
    let tok: StreamToken
    try {
      tok = await this.request<StreamToken>('POST', '/stream/token')
    } catch (err) {
      if (err instanceof FerryError && (err.status === 404 || err.status === 405)) return null
      throw err
    }
    const origin = this.opts.baseURL.replace(/\/+$/, '')
    const u = new URL(tok.url, origin || globalThis.location?.href)
    // The stored cursor makes the first event exact: "ready" when the
    // device is up to date, "changes" when it is behind.
    const cursor = await this.opts.store.cursor()
    if (cursor) u.searchParams.set('cursor', cursor)
    return u.toString()
  }
}

// Loop is Client.start's background work: timers, online events and the
// live stream.
class Loop {
  private stopped = false
  private timer: ReturnType<typeof setTimeout> | undefined
  private soonTimer: ReturnType<typeof setTimeout> | undefined
  private streamTimer: ReturnType<typeof setTimeout> | undefined
  private events: EventSource | null = null
  private streamUp = false
  private opening = false
  private failures = 0
  private readonly interval: number
  private readonly streamInterval: number
  private readonly debounce: number
  private readonly onOnline = () => {
    this.soon()
    if (!this.events) this.openStream()
  }

  constructor(
    private readonly client: Client,
    opts: StartOptions,
    private readonly ES: typeof EventSource | undefined,
    private readonly report: (s: StreamState) => void,
  ) {
    this.interval = opts.intervalMs ?? 30000
    this.streamInterval = opts.streamIntervalMs ?? 10 * this.interval
    this.debounce = opts.debounceMs ?? 100
    globalThis.addEventListener?.('online', this.onOnline)
    this.soon()
    this.schedule()
    if (opts.stream !== false && ES) this.openStream()
    else this.report(ES ? 'off' : 'unsupported')
  }

  /** Sync after the debounce; several calls meanwhile make one sync. */
  soon(): void {
    if (this.stopped || this.soonTimer) return
    this.soonTimer = setTimeout(() => {
      this.soonTimer = undefined
      this.client.sync().catch(() => {}) // reported through onState
    }, this.debounce)
  }

  /** After any sync, failed or not, the next periodic one is a full period away. */
  synced(): void {
    this.schedule()
  }

  private schedule(): void {
    clearTimeout(this.timer)
    if (this.stopped) return
    this.timer = setTimeout(() => this.soon(), this.streamUp ? this.streamInterval : this.interval)
  }

  private async openStream(): Promise<void> {
    // One stream at a time: the online event and a retry timer may both
    // ask while a token request is in flight.
    if (this.stopped || !this.ES || this.opening || this.events) return
    clearTimeout(this.streamTimer)
    this.report('connecting')
    let url: string | null
    this.opening = true
    try {
      url = await this.client.streamURL()
    } catch {
      this.retryStream()
      return
    } finally {
      this.opening = false
    }
    if (this.stopped) return
    if (url === null) {
      // No realtime plugin: poll, and ask again in case an upgrade adds it.
      this.report('unsupported')
      this.streamTimer = setTimeout(() => this.openStream(), this.interval)
      return
    }
    const es = new this.ES(url)
    this.events = es
    es.addEventListener('changes', () => this.soon())
    es.addEventListener('ready', () => {})
    es.onopen = () => {
      this.failures = 0
      this.streamUp = true
      this.report('up')
      this.schedule()
    }
    es.onerror = () => {
      this.streamUp = false
      this.report('down')
      this.schedule()
      // EventSource reconnects by itself, resending the last event id;
      // once it gives up (the token expired: 401) it needs a new token.
      if (es.readyState === 2 /* CLOSED */) {
        es.close()
        if (this.events === es) this.events = null
        this.retryStream()
      }
    }
  }

  private retryStream(): void {
    if (this.stopped) return
    this.report('down')
    this.failures++
    // Full jitter below a bound that doubles per failure, 1 s to a minute.
    const bound = Math.min(60000, 1000 * 2 ** Math.min(this.failures - 1, 6))
    this.streamTimer = setTimeout(() => this.openStream(), Math.random() * bound)
  }

  stop(): void {
    this.stopped = true
    clearTimeout(this.timer)
    clearTimeout(this.soonTimer)
    clearTimeout(this.streamTimer)
    this.events?.close()
    this.events = null
    globalThis.removeEventListener?.('online', this.onOnline)
  }
}

function local(w: WireRecord): LocalRecord {
  const r: LocalRecord = { model: w.model, uid: w.uid, owner: w.owner, modify_at: w.modify_at, is_deleted: w.is_deleted, version: w.version, data: w.data, synced: true }
  if (w.space) r.space = w.space
  if (w.fields_modify_at) r.fields_modify_at = w.fields_modify_at
  return r
}

/**
 * The field times of next, an edit of cur (undefined for a new record):
 * a top-level field the edit changed, added or removed was edited at
 * next.modify_at; the others keep the time they had. Times the protocol
 * implies (a field next has, at next.modify_at) are left out.
 */
export function editedFieldTimes(cur: WireRecord | undefined, next: { modify_at: string; data: unknown }): Record<string, string> | undefined {
  if (!cur) return undefined
  const before = objectOf(cur.data)
  const after = objectOf(next.data)
  const prev = cur.fields_modify_at ?? {}
  const out: Record<string, string> = {}
  const keep = (name: string) => {
    const had = prev[name]
    if (had !== undefined) out[name] = had
    else if (name in before) out[name] = cur.modify_at
  }
  for (const name of Object.keys(after)) {
    if (name in before && sameJSON(before[name], after[name])) keep(name)
    else out[name] = next.modify_at
  }
  for (const name of Object.keys(before)) if (!(name in after)) out[name] = next.modify_at
  for (const name of Object.keys(prev)) if (!(name in out)) keep(name)
  const at = Date.parse(next.modify_at)
  for (const [name, t] of Object.entries(out)) if (name in after && Date.parse(t) === at) delete out[name]
  // The server keeps the 64 newest entries of removed fields; so does the device.
  const removed = Object.keys(out).filter((name) => !(name in after))
  if (removed.length > 64) {
    removed.sort((a, b) => Date.parse(out[b] ?? '') - Date.parse(out[a] ?? '') || (a < b ? -1 : a > b ? 1 : 0))
    for (const name of removed.slice(64)) delete out[name]
  }
  return Object.keys(out).length ? out : undefined
}

function objectOf(v: unknown): Record<string, unknown> {
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {}
}

function sameJSON(a: unknown, b: unknown): boolean {
  return canonicalJSON(a) === canonicalJSON(b)
}

function canonicalJSON(v: unknown): string {
  if (Array.isArray(v)) return '[' + v.map(canonicalJSON).join(',') + ']'
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>
    return '{' + Object.keys(o).sort().map((k) => JSON.stringify(k) + ':' + canonicalJSON(o[k])).join(',') + '}'
  }
  return JSON.stringify(v)
}

function key(r: { model: string; uid: string; space?: string }): string {
  return `${r.space ?? ''}\u0000${r.model}\u0000${r.uid}`
}

/** The owner of a shared space's records, as the server sets it. */
function spaceOwner(space: string): string {
  return `s:${space}`
}

async function gzip(text: string): Promise<Uint8Array> {
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream('gzip'))
  return new Uint8Array(await new Response(stream).arrayBuffer())
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

function errorOf(resp: Response, text: string): FerryError {
  let code = codeForStatus(resp.status)
  let message = `HTTP ${resp.status}`
  let details: FieldError[] = []
  try {
    const body = JSON.parse(text) as ErrorBody
    if (body?.error?.code) {
      code = body.error.code
      message = body.error.message || message
      details = body.error.details ?? []
    }
  } catch {
    // Not the protocol's shape (a proxy's page): the status decides.
  }
  return new FerryError(resp.status, code, message, details, retryAfterMs(resp.headers.get('Retry-After')))
}

function codeForStatus(status: number): string {
  switch (status) {
    case 400:
      return Codes.invalid
    case 401:
      return Codes.unauthenticated
    case 403:
      return Codes.forbidden
    case 404:
      return Codes.notFound
    case 405:
      return Codes.methodNotAllowed
    case 409:
      return Codes.conflict
    case 410:
      return Codes.resetRequired
    case 413:
      return Codes.tooLarge
    case 415:
      return Codes.unsupportedMediaType
    case 429:
      return Codes.rateLimited
    case 503:
      return Codes.unavailable
    default:
      return Codes.internal
  }
}

function retryAfterMs(h: string | null): number {
  if (!h) return 0
  const n = Number(h)
  if (Number.isFinite(n) && n > 0) return n * 1000
  const t = Date.parse(h)
  return Number.isFinite(t) ? Math.max(0, t - Date.now()) : 0
}
