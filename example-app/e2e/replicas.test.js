// End-to-end test of live replication across two replicas of the example
// app on one PostgreSQL: RxDB devices replicating live (pull stream on)
// with different replicas, FERRY_URL and FERRY_URL2 (run by TestE2E's
// replicas subtests, on the PostgreSQL and the NATS bus). A device hears
// of the other's writes through its own replica's stream alone: RxDB's
// live replication does not poll.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { replicateWithFerry } from './rxdb-sync.js'
import { newDevice, tasks, newTask, closeAll } from './rxdb-device.js'
import { url, signUp, eventually } from './ferry.js'

const url2 = process.env.FERRY_URL2

test('RxDB devices on two replicas replicate live', { skip: !url2 && 'FERRY_URL2 (a second replica) is not set' }, async t => {
  t.after(closeAll)
  const ann = await signUp('ann')
  const a = await newDevice()
  const b = await newDevice()
  const ra = replicateWithFerry(a.tasks, { url, token: ann.token, live: true })
  const rb = replicateWithFerry(b.tasks, { url: url2, token: ann.token, live: true })
  t.after(() => Promise.all([ra.cancel(), rb.cancel()]))
  const errors = []
  ra.error$.subscribe(err => errors.push(err))
  rb.error$.subscribe(err => errors.push(err))
  await Promise.all([ra.awaitInitialReplication(), rb.awaitInitialReplication()])

  // A writes through replica 1; B, on replica 2, gets it live.
  const t1 = newTask({ title: 'Written on replica 1' })
  await a.tasks.insert(t1)
  await eventually(async () => (await b.tasks.findOne(t1.id).exec()) !== null, 'the task on the device of replica 2')

  // And back: B edits and deletes through replica 2, A follows.
  await (await b.tasks.findOne(t1.id).exec()).incrementalPatch({ title: 'Edited on replica 2' })
  await eventually(async () => (await a.tasks.findOne(t1.id).exec())?.title === 'Edited on replica 2', 'the edit on the device of replica 1')
  const burst = Array.from({ length: 30 }, (_, i) => newTask({ title: `Burst ${i}`, count: i }))
  await a.tasks.bulkInsert(burst)
  await (await a.tasks.findOne(t1.id).exec()).remove()
  await eventually(async () => JSON.stringify(await tasks(a)) === JSON.stringify(await tasks(b)), 'both devices equal after a burst and a delete')
  assert.equal((await tasks(b)).length, 30)
  assert.deepEqual(errors, [])
})
