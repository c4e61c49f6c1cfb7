// Ferry Notes: the example app's offline-first web app. Notes live in
// IndexedDB; @ferrysync/client queues every edit and syncs it through
// protocol v1 whenever the network allows, on the server's live hints.
import { Client, FerryError, IndexedDBStore, newUID, type ClientState, type LocalRecord, type Rejection } from '@ferrysync/client'
import './style.css'

const MODEL = 'data.Note'

interface Note {
  title: string
  body: string
  tags: string[] | null
  pinned: boolean
}

interface Session {
  /** The Ferry server's origin; "" is this page's. */
  server: string
  token: string
  user: { uid: string; email: string; name: string }
}

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T

// The server: this page's origin, or ?server=https://… for a page served
// from elsewhere (the server must list this origin in FERRY_CORS_ORIGINS).
function serverURL(): string {
  const q = new URLSearchParams(location.search).get('server')
  if (q !== null) localStorage.setItem('ferry.server', q.replace(/\/+$/, ''))
  return localStorage.getItem('ferry.server') ?? ''
}

function deviceID(): string {
  let id = localStorage.getItem('ferry.device')
  if (!id) {
    id = newUID()
    localStorage.setItem('ferry.device', id)
  }
  return id
}

function loadSession(): Session | null {
  try {
    const s = JSON.parse(localStorage.getItem('ferry.session') ?? 'null') as Session | null
    return s && s.token && s.user?.uid ? s : null
  } catch {
    return null
  }
}

let client: Client | null = null
let store: IndexedDBStore | null = null
// Tabs of one browser share the IndexedDB database: each tells the others
// when it changed it, so they show the same notes even offline.
const tabs = typeof BroadcastChannel === 'undefined' ? null : new BroadcastChannel('ferry-notes')

async function signIn(form: HTMLFormElement, mode: string): Promise<void> {
  const data = new FormData(form)
  const server = serverURL()
  const body: Record<string, string> = { email: String(data.get('email')), password: String(data.get('password')) }
  if (mode === 'register') body.name = String(data.get('name') || body.email.split('@')[0])
  const err = $('auth-error')
  err.textContent = ''
  let resp: Response
  try {
    resp = await fetch(`${server}/auth/${mode}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) })
  } catch {
    err.textContent = 'Cannot reach the server. Signing in needs the network once; after that the app works offline.'
    return
  }
  const answer = await resp.json().catch(() => null)
  if (!resp.ok) {
    err.textContent = answer?.error?.message ?? `The server answered ${resp.status}.`
    return
  }
  // The user comes as a data.User record: {uid, data: {email, name}, …}.
  const user = { uid: answer.user.uid, email: answer.user.data?.email ?? body.email, name: answer.user.data?.name ?? '' }
  const session: Session = { server, token: answer.token, user }
  localStorage.setItem('ferry.session', JSON.stringify(session))
  await open(session)
}

async function signOut(): Promise<void> {
  client?.stop()
  // Unsynced edits would be lost: keep the database unless all is synced.
  if (store && (await store.pendingCount()) === 0) await store.clear()
  store?.close()
  client = store = null
  localStorage.removeItem('ferry.session')
  show(null)
}

function show(session: Session | null): void {
  $('auth').hidden = session !== null
  $('notes-view').hidden = session === null
  $('account').hidden = session === null
  $('who').textContent = session ? session.user.email : ''
  if (!session) $('status').textContent = 'signed out'
}

async function open(session: Session): Promise<void> {
  show(session)
  store = await IndexedDBStore.open({ name: `ferry-notes-${session.user.uid}` })
  client = new Client({
    baseURL: session.server,
    token: session.token,
    owner: session.user.uid,
    deviceID: deviceID(),
    store,
    onChange: () => {
      tabs?.postMessage('changed')
      void render()
    },
    onState: renderState,
    onRejected: (r: Rejection) => {
      const why = r.errors.map((e) => `${e.path || 'note'}: ${e.message}`).join('; ')
      $('problems').textContent = `The server refused a change (${r.status}): ${why}`
    },
  })
  client.start({ intervalMs: 30000 })
  await render()
}

function renderState(s: ClientState): void {
  const el = $('status')
  const online = navigator.onLine
  const parts = [online ? 'online' : 'offline', s.pending ? `${s.pending} unsynced` : 'all synced']
  if (s.syncing) parts.push('syncing…')
  parts.push(`live: ${s.stream}`)
  if (s.lastError && online) {
    parts.push(s.lastError instanceof FerryError ? `error: ${s.lastError.message}` : 'server unreachable')
    if (s.lastError instanceof FerryError && s.lastError.code === 'unauthenticated') $('problems').textContent = 'Your session has ended: sign out and in again (unsynced notes are kept).'
  }
  el.textContent = parts.join(' · ')
  el.dataset.pending = String(s.pending)
  el.dataset.online = String(online)
  el.dataset.stream = s.stream
}

function byRecent(a: LocalRecord, b: LocalRecord): number {
  const na = a.data as Note
  const nb = b.data as Note
  if (na.pinned !== nb.pinned) return na.pinned ? -1 : 1
  return b.modify_at.localeCompare(a.modify_at) || a.uid.localeCompare(b.uid)
}

let rendering = Promise.resolve()
// The notes whose edit is being written to the store.
const saving = new Set<string>()

function render(): Promise<void> {
  rendering = rendering.then(draw, draw)
  return rendering
}

// draw updates the list in place, keyed by uid, and never overwrites a
// field that has the focus (the user is typing in it).
async function draw(): Promise<void> {
  if (!client) return
  const list = $('notes')
  const notes = (await client.list(MODEL)).sort(byRecent)
  const keep = new Set(notes.map((n) => n.uid))
  for (const li of [...list.children] as HTMLElement[]) if (!keep.has(li.dataset.uid!)) li.remove()
  let prev: Element | null = null
  for (const rec of notes) {
    let li = list.querySelector<HTMLLIElement>(`li[data-uid="${CSS.escape(rec.uid)}"]`)
    if (!li) li = noteItem(rec.uid)
    const note = rec.data as Note
    const title = li.querySelector<HTMLInputElement>('[data-testid=title]')!
    const body = li.querySelector<HTMLTextAreaElement>('[data-testid=body]')!
    const pinned = li.querySelector<HTMLInputElement>('[data-testid=pinned]')!
    // A field being typed in, or a note being saved, keeps what the
    // user wrote.
    const busy = saving.has(rec.uid)
    if (!busy && document.activeElement !== title) title.value = note.title
    if (!busy && document.activeElement !== body) body.value = note.body ?? ''
    if (!busy) pinned.checked = !!note.pinned
    li.classList.toggle('unsynced', !rec.synced)
    li.dataset.synced = String(rec.synced)
    li.querySelector<HTMLElement>('[data-testid=when]')!.textContent = `${rec.synced ? 'synced' : 'not synced yet'} · edited ${new Date(rec.modify_at).toLocaleString()}${rec.version ? ` · v${rec.version}` : ''}`
    const want: Element | null = prev ? prev.nextElementSibling : list.firstElementChild
    if (want !== li) list.insertBefore(li, want)
    prev = li
  }
}

function noteItem(uid: string): HTMLLIElement {
  const li = document.createElement('li')
  li.className = 'card note'
  li.dataset.uid = uid
  li.dataset.testid = 'note'
  li.innerHTML = `
    <div class="row"><input data-testid="title" maxlength="200" aria-label="Title" />
      <label class="pin"><input type="checkbox" data-testid="pinned" /> pinned</label>
      <button type="button" data-testid="delete" aria-label="Delete">Delete</button></div>
    <textarea data-testid="body" rows="2" aria-label="Note"></textarea>
    <small data-testid="when"></small>`
  const save = async () => {
    if (!client) return
    // Read the fields before any await: a render meanwhile (a sync
    // finishing) would put the stored, older values back in them.
    const edit = {
      title: li.querySelector<HTMLInputElement>('[data-testid=title]')!.value,
      body: li.querySelector<HTMLTextAreaElement>('[data-testid=body]')!.value,
      pinned: li.querySelector<HTMLInputElement>('[data-testid=pinned]')!.checked,
    }
    saving.add(uid)
    try {
      const cur = await client.store.get(MODEL, uid)
      const old = (cur?.data ?? {}) as Partial<Note>
      await client.put(MODEL, uid, { ...old, ...edit, tags: old.tags ?? [] })
    } finally {
      saving.delete(uid)
      void render()
    }
  }
  li.addEventListener('change', (e) => {
    if ((e.target as HTMLElement).dataset.testid !== 'delete') void save()
  })
  li.querySelector('[data-testid=delete]')!.addEventListener('click', () => void client?.delete(MODEL, uid))
  return li
}

async function addNote(form: HTMLFormElement): Promise<void> {
  if (!client) return
  const data = new FormData(form)
  const note: Note = { title: String(data.get('title')).trim(), body: String(data.get('body') ?? ''), tags: [], pinned: false }
  if (!note.title) return
  await client.put(MODEL, newUID(), note)
  form.reset()
}

function boot(): void {
  const auth = $<HTMLFormElement>('auth')
  auth.addEventListener('submit', (e) => {
    e.preventDefault()
    const mode = ((e as SubmitEvent).submitter as HTMLButtonElement | null)?.value ?? 'login'
    void signIn(auth, mode)
  })
  const form = $<HTMLFormElement>('new-note')
  form.addEventListener('submit', (e) => {
    e.preventDefault()
    void addNote(form)
  })
  $('sync-now').addEventListener('click', () => void client?.sync().catch(() => {}))
  $('sign-out').addEventListener('click', () => void signOut())
  for (const ev of ['online', 'offline']) addEventListener(ev, () => client && renderState(client.getState()))
  if (tabs) tabs.onmessage = () => void render()
  serverURL()
  const session = loadSession()
  show(session)
  if (session) void open(session)
  // The service worker keeps the app's files for offline starts.
  if ('serviceWorker' in navigator) navigator.serviceWorker.register('./sw.js').catch(() => {})
}

boot()
