// Helpers of the client's tests: accounts on the Ferry server at FERRY_URL
// (the example app, started by TestWeb in example-app, or by hand with
// `go run ./example-app`), and devices on their own in-memory IndexedDB.
import { randomUUID } from 'node:crypto'
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb'
import { EventSource } from 'eventsource'
import { Client, IndexedDBStore } from '../dist/index.js'

export const url = process.env.FERRY_URL
if (!url) throw new Error('FERRY_URL must name a running Ferry example app')

// signUp registers a fresh account and returns its token and user id.
export async function signUp(name) {
  const email = `${name}-${randomUUID()}@example.com`.toLowerCase()
  const res = await fetch(`${url}/auth/register`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ email, password: 'correct horse', name }),
  })
  if (res.status !== 201) throw new Error(`sign up: ${res.status} ${await res.text()}`)
  const { token, user } = await res.json()
  return { token, id: user.uid }
}

// device opens a client of user on a fresh IndexedDB; opts override the
// client's options (fetch, pullLimit, …).
export async function device(user, opts = {}) {
  const store = await IndexedDBStore.open({ name: `ferry-${user.id}`, indexedDB: new IDBFactory(), IDBKeyRange })
  return new Client({
    baseURL: url, token: user.token, owner: user.id, deviceID: randomUUID(), store,
    retry: { baseDelayMs: 10, maxDelayMs: 50 }, EventSource, isOnline: () => true, ...opts,
  })
}

// notes returns a device's live notes as {uid: title}, sorted by uid.
export async function notes(client) {
  const out = {}
  for (const r of (await client.list('data.Note')).sort((a, b) => a.uid.localeCompare(b.uid))) out[r.uid] = r.data.title
  return out
}

// serverNotes pulls every live note of user straight from the server.
export async function serverNotes(user) {
  const latest = new Map()
  let cursor = ''
  for (;;) {
    const res = await fetch(`${url}/sync/pull?models=data.Note&cursor=${encodeURIComponent(cursor)}`, {
      headers: { Authorization: `Bearer ${user.token}` },
    })
    if (!res.ok) throw new Error(`pull: ${res.status} ${await res.text()}`)
    const page = await res.json()
    for (const r of page.changes) latest.set(r.uid, r)
    cursor = page.cursor
    if (!page.has_more) break
  }
  const out = {}
  for (const r of [...latest.values()].filter((r) => !r.is_deleted).sort((a, b) => a.uid.localeCompare(b.uid))) out[r.uid] = r.data.title
  return out
}

// eventually retries check until it stops throwing, for up to ms.
export async function eventually(check, ms = 10000) {
  const end = Date.now() + ms
  for (;;) {
    try {
      return await check()
    } catch (err) {
      if (Date.now() > end) throw err
      await new Promise((r) => setTimeout(r, 50))
    }
  }
}
