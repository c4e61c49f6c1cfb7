import { test } from 'node:test'
import assert from 'node:assert/strict'
import { FerryError, OfflineError } from '../dist/index.js'
import { device, eventually, notes, serverNotes, signUp, url } from './helpers.js'

const note = (title) => ({ title, body: '', tags: [], pinned: false })

test('two devices of one user converge, an older offline edit loses, deletes travel', async () => {
  const ann = await signUp('ann')
  const a = await device(ann)
  const b = await device(ann)
  await a.sync() // the first pull: the user record
  await a.put('data.Note', 'n1', note('Milk'))
  await a.put('data.Note', 'n2', note('Bread'))
  assert.equal((await a.store.pendingCount()), 2)
  const ra = await a.sync()
  assert.equal(ra.applied, 2)
  assert.equal(await a.store.pendingCount(), 0)
  // A's push carried its cursor, so A does not pull its own writes back.
  assert.equal(ra.stored, 0)
  await b.sync()
  assert.deepEqual(await notes(b), { n1: 'Milk', n2: 'Bread' })

  // B edits n1 first, A later; A's edit wins whatever order they push in.
  await b.put('data.Note', 'n1', note('Oat milk'))
  await new Promise((r) => setTimeout(r, 5))
  await a.put('data.Note', 'n1', note('Soy milk'))
  await a.delete('data.Note', 'n2')
  assert.equal((await a.sync()).applied, 2)
  const rb = await b.sync()
  assert.equal(rb.stale, 1, 'B lost n1 to the later edit')
  await a.sync()
  assert.deepEqual(await notes(a), { n1: 'Soy milk' })
  assert.deepEqual(await notes(b), { n1: 'Soy milk' })
  assert.deepEqual(await serverNotes(ann), { n1: 'Soy milk' })
  assert.equal((await b.store.get('data.Note', 'n2')).is_deleted, true, 'the tombstone is kept')
})

test('ten offline edits of a record push once, and another user sees nothing', async () => {
  const ann = await signUp('ann')
  const bob = await signUp('bob')
  const pushes = []
  const a = await device(ann, {
    fetch: (u, init) => {
      if (String(u).includes('/push')) pushes.push(JSON.parse(init.body).changes.length)
      return fetch(u, init)
    },
  })
  for (let i = 0; i < 10; i++) await a.put('data.Note', 'same', note(`v${i}`))
  assert.equal(await a.store.pendingCount(), 1)
  await a.sync()
  assert.deepEqual(pushes, [1])
  assert.deepEqual(await serverNotes(ann), { same: 'v9' })
  const b = await device(bob)
  await b.put('data.Note', 'same', note('Bob’s own'))
  await b.sync()
  assert.deepEqual(await notes(b), { same: 'Bob’s own' })
  assert.deepEqual(await serverNotes(ann), { same: 'v9' })
})

test('a paged pull stores its cursor only after the last page', async () => {
  const ann = await signUp('ann')
  const a = await device(ann)
  for (let i = 0; i < 7; i++) await a.put('data.Note', `p${i}`, note(`t${i}`))
  await a.sync()
  // C's third page fails for good: nothing moves its cursor.
  let pages = 0
  const c = await device(ann, {
    pullLimit: 2, retry: { maxAttempts: 1 },
    fetch: (u, init) => {
      if (String(u).includes('/pull') && ++pages === 3) return Promise.reject(new TypeError('network down'))
      return fetch(u, init)
    },
  })
  await assert.rejects(c.sync(), OfflineError)
  assert.equal(await c.store.cursor(), '', 'no cursor after an interrupted pull')
  const res = await c.sync()
  assert.equal(await c.store.cursor() !== '', true)
  assert.ok(res.pulled >= 8, `pulled ${res.pulled}: the user and seven notes`)
  assert.equal(Object.keys(await notes(c)).length, 7)
  assert.equal((await c.sync()).pulled, 0, 'nothing new after the last page')
})

test('lost answers, refused connections and 503s are retried without duplicates', async () => {
  const ann = await signUp('ann')
  let n = 0
  const a = await device(ann, {
    fetch: async (u, init) => {
      n++
      if (n === 1) throw new TypeError('connection refused') // before the server acted
      if (n === 2) {
        await fetch(u, init) // the server applies it; the answer is lost
        throw new TypeError('connection reset')
      }
      if (n === 3) return new Response('{"error":{"code":"unavailable","message":"busy"}}', { status: 503, headers: { 'Retry-After': '0' } })
      return fetch(u, init)
    },
  })
  await a.put('data.Note', 'r1', note('Retried'))
  const res = await a.sync()
  assert.equal(res.applied, 1, 'the retried push is answered applied')
  assert.equal(await a.store.pendingCount(), 0)
  const rec = await a.store.get('data.Note', 'r1')
  const b = await device(ann)
  await b.sync()
  assert.equal((await b.store.get('data.Note', 'r1')).version, rec.version, 'the retry made no new version')
})

test('an edit made while its push is in flight stays queued and is pushed next', async () => {
  const ann = await signUp('ann')
  let a
  let edited = false
  a = await device(ann, {
    fetch: async (u, init) => {
      const resp = await fetch(u, init)
      if (String(u).includes('/push') && !edited) {
        edited = true
        await a.put('data.Note', 'e1', note('second'))
      }
      return resp
    },
  })
  await a.put('data.Note', 'e1', note('first'))
  const res = await a.sync()
  assert.equal(res.requeued, 1, 'the first answer did not acknowledge the newer edit')
  assert.equal(res.pushed, 2, 'the newer edit was pushed in the same sync')
  assert.equal(await a.store.pendingCount(), 0)
  assert.deepEqual(await serverNotes(ann), { e1: 'second' })
  assert.equal((await a.store.get('data.Note', 'e1')).data.title, 'second')
})

test('a refused change leaves the queue, is reported, and does not block the rest', async () => {
  const ann = await signUp('ann')
  const refused = []
  const a = await device(ann, { onRejected: (r) => refused.push(r) })
  await a.put('data.Note', 'bad', { title: '' })
  await a.put('data.Note', 'good', note('Fine'))
  const res = await a.sync()
  assert.equal(res.rejected, 1)
  assert.equal(res.applied, 1)
  assert.equal(refused.length, 1)
  assert.equal(refused[0].change.uid, 'bad')
  assert.equal(refused[0].errors[0].path, '/data/title')
  assert.equal(await a.store.pendingCount(), 0)
})

test('410 reset_required pulls from the start, keeps unsynced edits and forgets what the server no longer has', async () => {
  const ann = await signUp('ann')
  let resetOnce = false
  const a = await device(ann, {
    fetch: (u, init) => {
      const q = new URL(String(u)).searchParams
      if (resetOnce && String(u).includes('/pull') && q.get('cursor')) {
        resetOnce = false
        return Promise.resolve(new Response('{"error":{"code":"reset_required","message":"the cursor is older than the purge horizon"}}', { status: 410 }))
      }
      return fetch(u, init)
    },
  })
  await a.put('data.Note', 'kept', note('On the server'))
  await a.sync()
  // A record the server never had, stored as synced (as if its tombstone
  // was purged), and an unsynced local edit.
  await a.store.applyRemote([{ model: 'data.Note', uid: 'purged', modify_at: new Date().toISOString(), is_deleted: true, data: null, synced: true }])
  await a.put('data.Note', 'local', note('Not yet pushed'))
  resetOnce = true
  // The push goes first; only then the pull meets the 410.
  await a.store.setCursor((await a.store.cursor()) || 'h1.stale')
  const res = await a.sync()
  assert.equal(res.reset, true)
  assert.equal(await a.store.get('data.Note', 'purged'), undefined, 'forgotten after the pull from the start')
  assert.deepEqual(await notes(a), { kept: 'On the server', local: 'Not yet pushed' })
  assert.deepEqual(await serverNotes(ann), { kept: 'On the server', local: 'Not yet pushed' })
})

test('401 is returned at once, in the protocol error shape', async () => {
  const ann = await signUp('ann')
  let calls = 0
  const a = await device({ ...ann, token: 'not-a-token' }, { fetch: (u, i) => { calls++; return fetch(u, i) } })
  await a.put('data.Note', 'x', note('x'))
  const err = await a.sync().then(() => null, (e) => e)
  assert.ok(err instanceof FerryError)
  assert.equal(err.status, 401)
  assert.equal(err.code, 'unauthenticated')
  assert.equal(calls, 1, 'no retry')
  assert.equal(await a.store.pendingCount(), 1, 'the change stays queued')
})

test('start() syncs on the live stream’s hints', async () => {
  const ann = await signUp('ann')
  const a = await device(ann)
  const states = []
  const b = await device(ann, { onState: (s) => states.push(s.stream) })
  // Polling every hour: only the stream can bring A's write within the test.
  b.start({ intervalMs: 3600_000 })
  try {
    await eventually(() => assert.equal(b.getState().stream, 'up'))
    await eventually(() => assert.ok(b.getState().lastSyncAt))
    await a.put('data.Note', 'live', note('Heard live'))
    await a.sync()
    await eventually(async () => assert.deepEqual(await notes(b), { live: 'Heard live' }))
    // A local write is pushed by the loop without a call to sync.
    await b.put('data.Note', 'back', note('From B'))
    await eventually(async () => assert.deepEqual(await serverNotes(ann), { back: 'From B', live: 'Heard live' }))
  } finally {
    b.stop()
  }
  assert.ok(states.includes('connecting'))
})

test('the server answers bad input in the error shape the client decodes', async () => {
  const ann = await signUp('ann')
  const a = await device(ann)
  const err = await a.request('GET', '/pull', { cursor: 'not-a-cursor' }).then(() => null, (e) => e)
  assert.ok(err instanceof FerryError)
  assert.equal(err.status, 400)
  assert.equal(err.code, 'invalid_cursor')
  assert.ok(url)
})

test('start() polls when the server has no live stream (404), and after a failed sync', async () => {
  const ann = await signUp('ann')
  const a = await device(ann)
  let down = true
  const b = await device(ann, {
    retry: { maxAttempts: 1 },
    fetch: (u, init) => {
      if (String(u).endsWith('/stream/token')) return Promise.resolve(new Response('{"error":{"code":"not_found","message":"no route"}}', { status: 404 }))
      if (down) return Promise.reject(new TypeError('connection refused'))
      return fetch(u, init)
    },
  })
  b.start({ intervalMs: 200 })
  try {
    await eventually(() => assert.equal(b.getState().stream, 'unsupported'))
    await eventually(() => assert.ok(b.getState().lastError instanceof OfflineError))
    down = false
    await a.put('data.Note', 'polled', note('Found by polling'))
    await a.sync()
    await eventually(async () => assert.deepEqual(await notes(b), { polled: 'Found by polling' }))
    assert.equal(b.getState().lastError, undefined)
  } finally {
    b.stop()
  }
})

test('pushes go gzip-compressed once the server says it takes them, pulls come compressed, and a 415 turns it off', async () => {
  const ann = await signUp('ann')
  const long = 'a fairly repetitive note title '.repeat(6)
  const seen = { push: [], pull: [] }
  let refuse = false
  const a = await device(ann, {
    fetch: async (u, init) => {
      const enc = init.headers['Content-Encoding'] ?? ''
      if (String(u).includes('/push')) {
        seen.push.push(enc)
        if (refuse && enc) return new Response('no', { status: 415 })
      }
      const resp = await fetch(u, init)
      if (String(u).includes('/pull')) seen.pull.push(resp.headers.get('content-encoding') ?? '')
      return resp
    },
  })
  const batch = async (k) => {
    for (let i = 0; i < 20; i++) await a.put('data.Note', `g${k}-${i}`, note(long))
    assert.equal((await a.sync()).applied, 20)
  }
  await batch(1)
  assert.equal(seen.push[0], '', 'the first push goes plain: the server has not said yet')
  await batch(2)
  assert.equal(seen.push.at(-1), 'gzip')
  const c = await device(ann)
  await c.sync()
  assert.equal(Object.keys(await notes(c)).length, 40, 'the gzip pushes were applied')
  const fresh = await device(ann, {
    fetch: async (u, init) => {
      const resp = await fetch(u, init)
      if (String(u).includes('/pull')) seen.pull.push(resp.headers.get('content-encoding') ?? '')
      return resp
    },
  })
  await fresh.sync()
  assert.match(seen.pull.at(-1), /gzip|zstd|br|deflate/, 'a 40-note page came compressed')
  refuse = true
  await batch(3)
  assert.deepEqual(seen.push.slice(-2), ['gzip', ''], 'refused once, then plain')
  await batch(4)
  assert.equal(seen.push.at(-1), '')
})

test('a shared space’s record with a personal record’s uid does not take its place: records are keyed by space', async () => {
  const ann = await signUp('ann')
  const a = await device(ann)
  await a.put('data.Note', 'same', note('personal'))
  await a.sync()
  // Another device of Ann's (curl here) shares a note with the same uid.
  const space = `s-${Date.now()}`
  const at = new Date().toISOString()
  const res = await fetch(`${url}/sync/push`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${ann.token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ changes: [
      { space, model: 'ferry.Space', uid: space, modify_at: at, data: { name: 'shared' } },
      { space, model: 'data.Note', uid: 'same', modify_at: at, data: note('shared') },
    ] }),
  })
  const body = await res.json()
  assert.deepEqual(body.results.map((r) => r.status), ['applied', 'applied'])
  await a.sync()
  assert.deepEqual(await notes(a), { same: 'personal' })
  assert.deepEqual((await a.list('data.Note', space)).map((r) => [r.uid, r.data.title, r.space, r.owner]), [['same', 'shared', space, `s:${space}`]])
  assert.deepEqual((await a.spaces()).map((r) => r.uid), [space])
  assert.equal((await a.list('ferry.Space')).length, 0, 'no ferry.Space in the personal space')
  // Editing one leaves the other alone, on the device and on the server.
  await a.put('data.Note', 'same', note('shared, edited'), space)
  await a.sync()
  assert.deepEqual(await notes(a), { same: 'personal' })
  assert.equal((await a.store.get('data.Note', 'same', space)).data.title, 'shared, edited')
  const c = await device(ann)
  await c.sync()
  assert.deepEqual(await notes(c), { same: 'personal' })
  assert.equal((await c.list('data.Note', space))[0].data.title, 'shared, edited')
})
