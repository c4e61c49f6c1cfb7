// End-to-end test of the RxDB adapter with the real rxdb (memory storage,
// replicateRxCollection) against FERRY_URL.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { replicateWithFerry } from './rxdb-sync.js'
import { newDevice, sync, tasks, newTask, closeAll } from './rxdb-device.js'
import { url, signUp, nativePush, serverTasks, countRequests, eventually } from './ferry.js'

test('RxDB devices converge through Ferry', { skip: !url && 'FERRY_URL is not set' }, async t => {
  t.after(closeAll)
  const ann = await signUp('ann')
  const bob = await signUp('bob')

  const a = await newDevice()
  const b = await newDevice()
  await sync(a, ann)
  await sync(b, ann)

  // Device A creates three tasks and syncs; B gets them.
  const [t1, t2, t3] = [newTask({ title: 'Buy milk', count: 1 }), newTask({ title: 'Call mum' }), newTask({ title: 'Water plants' })]
  await a.tasks.bulkInsert([t1, t2, t3])
  await sync(a, ann)
  await sync(b, ann)
  assert.deepEqual(await tasks(b), await tasks(a))

  // Both edit offline: the same task on both, an update against a delete,
  // a delete against an update, and a create each.
  const on = (db, task) => db.tasks.findOne(task.id).exec()
  await (await on(a, t1)).incrementalPatch({ title: 'Buy oat milk' })
  await (await on(b, t1)).incrementalPatch({ body: 'two cartons', count: 2 })
  await (await on(a, t2)).remove()
  await (await on(b, t2)).incrementalPatch({ done: true })
  await (await on(a, t3)).incrementalPatch({ done: true })
  await (await on(b, t3)).remove()
  await a.tasks.insert(newTask({ title: 'Made on A' }))
  await b.tasks.insert(newTask({ title: 'Made on B', count: 5 }))

  // They sync in turns; B's conflicting rows come back as conflicts and
  // RxDB's default handler takes the server's state.
  await sync(a, ann)
  await sync(b, ann)
  await sync(a, ann)
  const server = await serverTasks(ann.token)
  assert.deepEqual(await tasks(a), server)
  assert.deepEqual(await tasks(b), server)
  assert.equal(server.find(x => x.id === t1.id).title, 'Buy oat milk')
  assert.ok(!server.some(x => x.id === t2.id), 'the task A deleted stays deleted')
  assert.ok(server.some(x => x.title === 'Made on A') && server.some(x => x.title === 'Made on B'))

  // A document the server refuses (a blank title) does not block the
  // device: the rest syncs, and the server's state replaces it.
  const blank = newTask({ title: '' })
  await a.tasks.insert(blank)
  await (await on(a, t1)).incrementalPatch({ title: '' })
  await a.tasks.insert(newTask({ title: 'Valid beside invalid' }))
  await sync(a, ann)
  const corrected = await serverTasks(ann.token)
  assert.deepEqual(await tasks(a), corrected)
  assert.ok(!corrected.some(x => x.id === blank.id), 'the refused create is gone')
  assert.equal(corrected.find(x => x.id === t1.id).title, 'Buy oat milk')
  assert.ok(corrected.some(x => x.title === 'Valid beside invalid'))
  await sync(b, ann)

  // More tasks, then a third device's first sync pages through everything.
  await a.tasks.bulkInsert(Array.from({ length: 12 }, (_, i) => newTask({ title: `Bulk ${i}`, count: i })))
  await sync(a, ann)
  const c = await newDevice()
  const pulls = await countRequests('/pull?', () => sync(c, ann, 4))
  assert.ok(pulls >= 4, `the first sync of 16+ tasks in pages of 4 took ${pulls} pulls`)
  assert.deepEqual(await tasks(c), await serverTasks(ann.token))

  // A record written through the native protocol reaches a live client
  // through the event stream, and an offline one on its next sync.
  const live = replicateWithFerry(c.tasks, { url, token: ann.token })
  await live.awaitInitialReplication()
  const nativeID = `native-${randomUUID()}`
  await nativePush(ann.token, [{ id: nativeID, title: 'Written natively', count: 7, done: true }])
  await eventually(async () => (await c.tasks.findOne(nativeID).exec()) !== null, 'the native write on the live device')
  await live.cancel()
  await sync(b, ann)
  assert.deepEqual((await tasks(b)).find(x => x.id === nativeID),
    { id: nativeID, title: 'Written natively', body: '', count: 7, done: true })
  assert.deepEqual(await tasks(b), await serverTasks(ann.token))

  // Another user's token sees none of it.
  const d = await newDevice()
  await sync(d, bob)
  assert.deepEqual(await tasks(d), [])
  assert.deepEqual(await serverTasks(bob.token), [])
})
