// Helpers of the client's tests: devices on their own in-memory IndexedDB,
// syncing with the Ferry server at FERRY_URL (the example app, started by
// TestWeb in example-app, or by hand with `go run ./example-app`).
// Accounts and the server's view come from the example app's end-to-end
// helpers, which need no package.
import { randomUUID } from 'node:crypto'
import { passes, pullLive, signUp, url } from '../../../example-app/e2e/ferry.js'
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb'
import { EventSource } from 'eventsource'
import { Client, IndexedDBStore } from '../dist/index.js'

if (!url) throw new Error('FERRY_URL must name a running Ferry example app')
export { passes as eventually, signUp, url }

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

// serverNotes pulls every live note of user straight from the server, as
// {uid: title}.
export async function serverNotes(user) {
  const out = {}
  for (const r of (await pullLive(user.token, 'data.Note')).sort((a, b) => a.uid.localeCompare(b.uid))) out[r.uid] = r.data.title
  return out
}
