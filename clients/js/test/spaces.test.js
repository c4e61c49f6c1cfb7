// Shared spaces in the JavaScript client, against the example app: records
// of a space are pulled and pushed with their space, a lost space is
// dropped with its unsynced changes reported, records of a space the
// cursor does not cover are swept, and a version 1 database (the personal
// space alone) is upgraded keeping its records and queue.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb'
import { IndexedDBStore } from '../dist/index.js'
import { device, signUp, url } from './helpers.js'

const note = (title) => ({ title, body: '', tags: [], pinned: false })
const titles = async (client, space) => Object.fromEntries((await client.list('data.Note', space)).map((r) => [r.uid, r.data.title]))

test('a shared space: a writer reads and writes it, a reader is refused, a removed member drops it and reports unsynced edits', async () => {
  const ann = await signUp('ann')
  const bob = await signUp('bob')
  const a = await device(ann)
  const refused = []
  // Bob's device makes an edit to the space while its pull is in flight,
  // once armed: that change can only be dropped by the pull's removed.
  let editDuringPull = null
  const b = await device(bob, {
    onRejected: (r) => refused.push(r),
    fetch: async (input, init) => {
      if (editDuringPull && String(input).includes('/sync/pull')) {
        const edit = editDuringPull
        editDuringPull = null
        await edit()
      }
      return fetch(input, init)
    },
  })
  const space = await a.createSpace({ name: 'groceries' })
  await a.put('data.Note', 'n1', note('Milk'), space)
  await a.setMember(space, bob.id, 'writer')
  const ra = await a.sync()
  assert.equal(ra.applied, 3)

  await b.put('data.Note', 'mine', note('Bob alone'))
  await b.sync()
  assert.deepEqual(await titles(b, space), { n1: 'Milk' })
  assert.deepEqual(await titles(b), { mine: 'Bob alone' })
  assert.deepEqual((await b.spaces()).map((r) => [r.uid, r.data.name]), [[space, 'groceries']])
  const members = (await b.list('ferry.Member', space)).map((r) => [r.uid, r.data.role]).sort()
  assert.deepEqual(members, [[ann.id, 'admin'], [bob.id, 'writer']].sort())

  // Bob writes to the space; Ann gets it.
  await b.put('data.Note', 'n2', note('Bread'), space)
  assert.equal((await b.sync()).applied, 1)
  await a.sync()
  assert.deepEqual(await titles(a, space), { n1: 'Milk', n2: 'Bread' })

  // A reader's write is refused with the reason and leaves the queue.
  await a.setMember(space, bob.id, 'reader')
  await a.sync()
  await b.sync()
  await b.put('data.Note', 'n1', note('Oat milk'), space)
  const rb = await b.sync()
  assert.equal(rb.forbidden, 1)
  assert.equal(refused.length, 1)
  assert.equal(refused[0].change.space, space)
  assert.equal(refused[0].errors[0].path, '/space')
  assert.match(refused[0].errors[0].message, /reader/)
  assert.equal(await b.store.pendingCount(), 0)

  // Ann removes Bob. Bob's next pull drops the space; an edit he makes
  // while that pull is in flight is reported, not pushed, not kept.
  await a.removeMember(space, bob.id)
  await a.put('data.Note', 'n3', note('After Bob'), space)
  await a.sync()
  editDuringPull = () => b.put('data.Note', 'n2', note('Rye bread'), space)
  const gone = await b.sync()
  assert.equal(gone.dropped, 1)
  assert.deepEqual(await titles(b, space), {})
  assert.equal((await b.store.list()).filter((r) => r.space).length, 0, 'no record of the space is left')
  assert.equal(await b.store.pendingCount(), 0)
  assert.equal(refused.length, 2)
  assert.equal(refused[1].change.uid, 'n2')
  assert.equal(refused[1].status, 'forbidden')
  assert.deepEqual(await b.spaces(), [])
  assert.deepEqual(await titles(b), { mine: 'Bob alone' }, 'the personal space is untouched')
  // Nothing of the space comes back.
  await b.sync()
  assert.equal((await b.store.list()).filter((r) => r.space).length, 0)
  assert.deepEqual(await titles(a, space), { n1: 'Milk', n2: 'Bread', n3: 'After Bob' })
})

test('synced records of a space the cursor does not cover are swept; unsynced ones stay', async () => {
  const ann = await signUp('ann')
  const rejected = []
  const a = await device(ann, { onRejected: (r) => rejected.push(r) })
  await a.sync()
  const ghost = `ghost-${randomUUID()}`
  // As a pull cut short might have left them: part of a space the stored
  // cursor never covered.
  await a.store.applyRemote([{ model: 'data.Note', uid: 'g1', space: ghost, owner: `s:${ghost}`, modify_at: new Date().toISOString(), is_deleted: false, version: 1, data: note('ghost'), synced: true }])
  await a.store.putLocal({ model: 'data.Note', uid: 'g2', space: ghost, owner: `s:${ghost}`, modify_at: new Date().toISOString(), is_deleted: false, data: note('queued') })
  assert.deepEqual((await a.store.spaces()), [ghost])
  const res = await a.sync()
  // g2's push is answered (forbidden: a space nobody holds); g1 is swept.
  assert.equal(res.forbidden, 1)
  assert.deepEqual(rejected.map((r) => r.change.uid), ['g2'])
  assert.equal(res.dropped, 1)
  assert.equal(await a.store.get('data.Note', 'g1', ghost), undefined)
  assert.deepEqual(await a.store.spaces(), [])
})

test('a version 1 database (personal records keyed by model and uid) is upgraded with its records and queue', async () => {
  const ann = await signUp('ann')
  const factory = new IDBFactory()
  const name = `ferry-${ann.id}`
  // The schema of the previous release, with one synced record, one
  // queued edit and a cursor.
  await new Promise((resolve, reject) => {
    const req = factory.open(name, 1)
    req.onupgradeneeded = () => {
      const db = req.result
      const records = db.createObjectStore('records', { keyPath: ['model', 'uid'] })
      records.createIndex('model', 'model')
      const queue = db.createObjectStore('queue', { keyPath: ['model', 'uid'] })
      queue.createIndex('seq', 'seq', { unique: true })
      db.createObjectStore('meta')
    }
    req.onsuccess = () => {
      const db = req.result
      const t = db.transaction(['records', 'queue', 'meta'], 'readwrite')
      const at = new Date().toISOString()
      t.objectStore('records').put({ model: 'data.Note', uid: 'old', owner: ann.id, modify_at: at, is_deleted: false, version: 3, data: note('kept'), synced: true })
      t.objectStore('records').put({ model: 'data.Note', uid: 'edit', owner: ann.id, modify_at: at, is_deleted: false, data: note('queued'), synced: false })
      t.objectStore('queue').put({ model: 'data.Note', uid: 'edit', modify_at: at, is_deleted: false, data: note('queued'), seq: 7 })
      t.objectStore('meta').put(7, 'seq')
      t.objectStore('meta').put('some-old-cursor', 'cursor')
      t.oncomplete = () => { db.close(); resolve() }
      t.onerror = () => reject(t.error)
    }
    req.onerror = () => reject(req.error)
  })
  const store = await IndexedDBStore.open({ name, indexedDB: factory, IDBKeyRange })
  assert.equal((await store.get('data.Note', 'old')).data.title, 'kept')
  assert.equal((await store.get('data.Note', 'edit')).synced, false)
  assert.deepEqual((await store.pending(0, 10)).map((p) => [p.uid, p.seq, p.space]), [['edit', 7, undefined]])
  assert.equal(await store.cursor(), '')
  // It syncs: the queued edit is pushed; the record the server never had
  // is forgotten by the pull from the start.
  const a = await device(ann, { store })
  const res = await a.sync()
  assert.equal(res.applied, 1)
  assert.equal((await a.store.get('data.Note', 'edit')).synced, true)
  assert.equal(await a.store.get('data.Note', 'old'), undefined)
  assert.equal(await store.putLocal({ model: 'data.Note', uid: 'next', owner: ann.id, modify_at: new Date().toISOString(), is_deleted: false, data: note('n') }), 8, 'the queue sequence goes on')
})

test('a user in many spaces pulls with POST /sync/pull (the cursor is too long for a URL); a server without it gets GET', async () => {
  const ann = await signUp('ann')
  for (const refusePost of [false, true]) {
    const methods = { GET: 0, POST: 0 }
    const a = await device(ann, {
      fetch: async (input, init) => {
        if (String(input).includes('/sync/pull')) {
          const method = init?.method ?? 'GET'
          methods[method]++
          if (refusePost && method === 'POST') {
            return new Response(JSON.stringify({ error: { code: 'method_not_allowed', message: 'method POST is not allowed here' } }),
              { status: 405, headers: { 'Content-Type': 'application/json' } })
          }
        }
        return fetch(input, init)
      },
    })
    if (!refusePost) {
      for (let i = 0; i < 90; i++) {
        const space = await a.createSpace({ name: `list ${i}` })
        await a.put('data.Note', 'n', note(`note ${i}`), space)
      }
    }
    await a.sync()
    await a.sync() // with the cursor of every space
    assert.equal((await a.spaces()).length, 90)
    if (refusePost) {
      assert.equal(methods.POST, 1, 'one refused POST, then GET')
      assert.ok(methods.GET >= 2)
    } else {
      assert.ok(methods.POST >= 1, `pulls by method ${JSON.stringify(methods)}`)
    }
  }
})
