// Helpers shared by the end-to-end tests: accounts and the native protocol
// of the Ferry server at FERRY_URL (started by TestE2E in
// example-app/server, or by hand with `go run ./example-app`).
import { randomUUID } from 'node:crypto'

export const url = process.env.FERRY_URL

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

// nativePush writes tasks through the native protocol (POST /sync/push).
export async function nativePush(token, tasks) {
  const changes = tasks.map(({ id, _deleted, ...data }) => ({
    model: 'data.Task', uid: id, modify_at: new Date().toISOString(), is_deleted: !!_deleted, data,
  }))
  const res = await fetch(`${url}/sync/push`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ device_id: 'native', changes }),
  })
  if (!res.ok) throw new Error(`native push: ${res.status} ${await res.text()}`)
  const { results } = await res.json()
  for (const r of results) {
    if (r.status !== 'applied') throw new Error(`native push: ${JSON.stringify(r)}`)
  }
  return results
}

// nativeChanges pushes raw changes of the native protocol (model, uid,
// space?, is_deleted?, data) stamped now, and wants every one applied.
export async function nativeChanges(token, changes) {
  const res = await fetch(`${url}/sync/push`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ device_id: 'native', changes: changes.map(c => ({ modify_at: new Date().toISOString(), data: {}, ...c })) }),
  })
  if (!res.ok) throw new Error(`native push: ${res.status} ${await res.text()}`)
  const { results } = await res.json()
  for (const r of results) {
    if (r.status !== 'applied') throw new Error(`native push: ${JSON.stringify(r)}`)
  }
  return results
}

// serverTasks pulls every task through the native protocol and returns the
// live ones as flat documents sorted by id.
export async function serverTasks(token) {
  const live = await pullLive(token, 'data.Task', { limit: 50 })
  return normalize(live.map(r => ({ id: r.uid, ...r.data })))
}

// pullLive pulls every record of model the token's user may read, page by
// page through the native protocol, and returns the live ones (the latest
// state of each, tombstones left out).
export async function pullLive(token, model, { base = url, limit = 500 } = {}) {
  const latest = new Map()
  let cursor = ''
  for (;;) {
    const res = await fetch(`${base}/sync/pull?models=${model}&limit=${limit}&cursor=${encodeURIComponent(cursor)}`, {
      headers: { Authorization: `Bearer ${token}` },
    })
    if (!res.ok) throw new Error(`native pull: ${res.status} ${await res.text()}`)
    const page = await res.json()
    for (const r of page.changes) latest.set(r.uid, r)
    cursor = page.cursor
    if (!page.has_more) break
  }
  return [...latest.values()].filter(r => !r.is_deleted)
}

// normalize makes task lists comparable: the four fields with their
// defaults, sorted by id.
export function normalize(tasks) {
  return tasks
    .map(t => ({ id: t.id, title: t.title ?? '', body: t.body ?? '', count: t.count ?? 0, done: t.done ?? false }))
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
}

// countRequests counts the fetches whose URL contains part while fn runs.
export async function countRequests(part, fn) {
  const original = globalThis.fetch
  let n = 0
  globalThis.fetch = (input, init) => {
    if (String(input).includes(part)) n++
    return original(input, init)
  }
  try {
    await fn()
  } finally {
    globalThis.fetch = original
  }
  return n
}

// eventually waits until fn() resolves truthy, failing after ms (a bound
// for a broken run, not a speed check).
export async function eventually(fn, what, ms = 20_000) {
  const until = Date.now() + ms
  for (;;) {
    if (await fn()) return
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

// passes retries check, which throws while its assertions fail, until it
// passes, for up to ms (a bound for a broken run, not a speed check); the
// last assertion's error tells what never came true.
export async function passes(check, ms = 15_000) {
  const until = Date.now() + ms
  for (;;) {
    try {
      return await check()
    } catch (err) {
      if (Date.now() > until) throw err
      await new Promise(resolve => setTimeout(resolve, 50))
    }
  }
}

// serverDocs pulls every doc (data.Doc) through the native protocol and
// returns the live ones as flat documents sorted by id, with the field
// times the server keeps for them.
export async function serverDocs(token) {
  const live = await pullLive(token, 'data.Doc', { limit: 50 })
  return live
    .map(r => ({ id: r.uid, title: r.data.title ?? '', body: r.data.body ?? '', tags: r.data.tags ?? '', times: r.fields_modify_at ?? {} }))
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
}
