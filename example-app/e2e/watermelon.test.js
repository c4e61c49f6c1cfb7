// End-to-end test of the WatermelonDB adapter with the real
// @nozbe/watermelondb (LokiJS adapter, in memory) against FERRY_URL.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { syncWithFerry } from './watermelon-sync.js'
import { newDevice, create, update, remove, tasks } from './watermelon-device.js'
import { url, signUp, nativePush, serverTasks, countRequests } from './ferry.js'

test('WatermelonDB devices converge through Ferry', { skip: !url && 'FERRY_URL is not set' }, async () => {
  const ann = await signUp('ann')
  const bob = await signUp('bob')
  const sync = (db, user = ann, pageSize) => syncWithFerry(db, { url, token: user.token, pageSize })

  const a = newDevice()
  const b = newDevice()
  await sync(a)
  await sync(b)
  assert.deepEqual(await tasks(a), [])

  // Device A creates three tasks and syncs; B gets them.
  const t1 = (await create(a, { title: 'Buy milk', count: 1 })).id
  const t2 = (await create(a, { title: 'Call mum' })).id
  const t3 = (await create(a, { title: 'Water plants', body: 'the big ones' })).id
  await sync(a)
  await sync(b)
  assert.deepEqual(await tasks(b), await tasks(a))

  // Both edit offline: the same task on both, an update against a delete,
  // a delete against an update, and a create each.
  await update(a, t1, { title: 'Buy oat milk' })
  await update(b, t1, { body: 'two cartons', count: 2 })
  await remove(a, t2)
  await update(b, t2, { done: true })
  await update(a, t3, { done: true })
  await remove(b, t3)
  await create(a, { title: 'Made on A' })
  await create(b, { title: 'Made on B', count: 5 })

  // They sync in turns until both have seen each other's changes.
  await sync(a)
  await sync(b)
  await sync(a)
  const server = await serverTasks(ann.token)
  assert.deepEqual(await tasks(a), server)
  assert.deepEqual(await tasks(b), server)
  // Column-level merge: A's title and B's body and count both survived.
  const merged = server.find(t => t.id === t1)
  assert.equal(merged.title, 'Buy oat milk')
  assert.equal(merged.body, 'two cartons')
  assert.equal(merged.count, 2)
  assert.ok(server.some(t => t.title === 'Made on A') && server.some(t => t.title === 'Made on B'))

  // A write lands on the server between B's pull and its push: the push
  // is refused with 409 and applies nothing; B's next sync merges it.
  await update(b, t1, { count: 9 })
  const realFetch = globalThis.fetch
  globalThis.fetch = async (input, init) => {
    if (init?.method === 'POST' && String(input).includes('/sync/watermelon')) {
      globalThis.fetch = realFetch
      await nativePush(ann.token, [{ id: t1, title: 'Raced', body: 'two cartons', count: 2 }])
    }
    return realFetch(input, init)
  }
  try {
    await assert.rejects(sync(b), /push: 409/)
  } finally {
    globalThis.fetch = realFetch
  }
  assert.equal((await serverTasks(ann.token)).find(t => t.id === t1).count, 2)
  await sync(b)
  await sync(a)
  const afterRace = await serverTasks(ann.token)
  assert.deepEqual(await tasks(a), afterRace)
  assert.deepEqual(await tasks(b), afterRace)
  assert.deepEqual(afterRace.find(t => t.id === t1), { id: t1, title: 'Raced', body: 'two cartons', count: 9, done: false })

  // A record the server refuses (a blank title) does not block the device:
  // the rest syncs, and the next sync replaces it with the server's state.
  const blank = (await create(a, { title: '' })).id
  await update(a, t1, { title: '' })
  await create(a, { title: 'Valid beside invalid' })
  await sync(a)
  await sync(a)
  const corrected = await serverTasks(ann.token)
  assert.deepEqual(await tasks(a), corrected)
  assert.ok(!corrected.some(t => t.id === blank), 'the refused create is gone')
  assert.equal(corrected.find(t => t.id === t1).title, 'Raced')
  assert.ok(corrected.some(t => t.title === 'Valid beside invalid'))
  await sync(b)

  // More tasks, then a third device's first sync pages through everything.
  for (let i = 0; i < 12; i++) await create(a, { title: `Bulk ${i}`, count: i })
  await sync(a)
  const c = newDevice()
  const pulls = await countRequests('/sync/watermelon?', () => sync(c, ann, 4))
  assert.ok(pulls >= 4, `the first sync of 16+ tasks in pages of 4 took ${pulls} pulls`)
  assert.deepEqual(await tasks(c), await serverTasks(ann.token))

  // A record written through the native protocol reaches the client.
  const nativeID = `native-${randomUUID()}`
  await nativePush(ann.token, [{ id: nativeID, title: 'Written natively', count: 7, done: true }])
  await sync(b)
  assert.deepEqual((await tasks(b)).find(t => t.id === nativeID),
    { id: nativeID, title: 'Written natively', body: '', count: 7, done: true })
  assert.deepEqual(await tasks(b), await serverTasks(ann.token))

  // Another user's token sees none of it.
  const d = newDevice()
  await sync(d, bob)
  assert.deepEqual(await tasks(d), [])
  assert.deepEqual(await serverTasks(bob.token), [])
})
