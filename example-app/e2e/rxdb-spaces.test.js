// End-to-end test of shared spaces through the RxDB adapter, with the real
// rxdb against FERRY_URL: one local collection per space, replicated with
// ?space=; a writer's edits go both ways, a reader's are refused with the
// reason, and a removed member's device deletes every document of the
// space on its next pull and hears nothing of it afterwards.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { replicateWithFerry } from './rxdb-sync.js'
import { newDevice, sync, syncSpace, tasks, newTask, closeAll } from './rxdb-device.js'
import { url, signUp, nativeChanges, eventually } from './ferry.js'

test('an RxDB collection of a shared space: share, write, demote, remove', { skip: !url && 'FERRY_URL is not set' }, async t => {
  t.after(closeAll)
  const ann = await signUp('ann')
  const bob = await signUp('bob')
  const space = randomUUID()
  const role = r => ({ model: 'ferry.Member', uid: bob.id, space, data: { role: r } })

  // Ann creates the space and adds Bob as a writer (native protocol).
  await nativeChanges(ann.token, [{ model: 'ferry.Space', uid: space, space, data: { name: 'groceries' } }])
  await nativeChanges(ann.token, [role('writer')])

  const a = await newDevice(['shared'])
  const b = await newDevice(['shared'])
  const [t1, t2, t3] = [newTask({ title: 'Milk' }), newTask({ title: 'Bread' }), newTask({ title: 'Eggs' })]
  await a.shared.bulkInsert([t1, t2, t3])
  await syncSpace(a.shared, ann, space)
  // Bob's personal task, which the space's fate must not touch.
  const mine = newTask({ title: 'Bob alone' })
  await b.tasks.insert(mine)
  await sync(b, bob)

  // Bob's device replicates the space (in pages of 2) and sees Ann's tasks.
  await syncSpace(b.shared, bob, space, { batchSize: 2 })
  assert.deepEqual(await tasks(b, 'shared'), await tasks(a, 'shared'))
  assert.deepEqual((await tasks(b)).map(x => x.id), [mine.id], "the space's tasks are not in Bob's personal collection")

  // Bob writes; Ann sees it.
  await b.shared.insert(newTask({ title: 'Butter (Bob)' }))
  await (await b.shared.findOne(t1.id).exec()).incrementalPatch({ count: 2 })
  await syncSpace(b.shared, bob, space)
  await syncSpace(a.shared, ann, space)
  assert.deepEqual(await tasks(a, 'shared'), await tasks(b, 'shared'))
  assert.equal((await tasks(a, 'shared')).find(x => x.id === t1.id).count, 2)
  assert.ok((await tasks(a, 'shared')).some(x => x.title === 'Butter (Bob)'))

  // Demoted to reader: Bob's edit is refused with the reason, and his
  // device takes the server's state back.
  await nativeChanges(ann.token, [role('reader')])
  await (await b.shared.findOne(t2.id).exec()).incrementalPatch({ title: 'Rye bread' })
  const refused = await syncSpace(b.shared, bob, space)
  assert.equal(refused.length, 1, JSON.stringify(refused))
  assert.equal(refused[0].id, t2.id)
  assert.equal(refused[0].status, 'forbidden')
  assert.equal(refused[0].errors[0].path, '/space')
  assert.match(refused[0].errors[0].message, /reader/)
  assert.equal((await b.shared.findOne(t2.id).exec()).title, 'Bread')
  await syncSpace(a.shared, ann, space)
  assert.equal((await a.shared.findOne(t2.id).exec()).title, 'Bread')

  // Bob's device replicates live: Ann's write reaches it through the stream.
  const live = replicateWithFerry(b.shared, { url, token: bob.token, space, remote: 'tasks' })
  const liveErrors = []
  live.error$.subscribe(err => liveErrors.push(err))
  await live.awaitInitialReplication()
  const t4 = newTask({ title: 'Apples' })
  await a.shared.insert(t4)
  await syncSpace(a.shared, ann, space)
  await eventually(async () => (await b.shared.findOne(t4.id).exec()) !== null, "Ann's write on Bob's live device")

  // Ann edits a task, then removes Bob: his stream wakes his device, whose
  // pull deletes every document of the space, the edited one included.
  await (await a.shared.findOne(t3.id).exec()).incrementalPatch({ done: true })
  await syncSpace(a.shared, ann, space)
  await nativeChanges(ann.token, [{ ...role('reader'), is_deleted: true }])
  await eventually(async () => (await b.shared.find().exec()).length === 0, "the space's documents gone from Bob's device")
  await live.cancel()
  assert.deepEqual(liveErrors, [])

  // Nothing of the space reaches Bob afterwards: a new task of Ann's, then
  // another sync of his device (its signed checkpoint now lists nothing).
  const secret = newTask({ title: 'After Bob left' })
  await a.shared.insert(secret)
  await syncSpace(a.shared, ann, space)
  await syncSpace(b.shared, bob, space)
  assert.deepEqual(await tasks(b, 'shared'), [])
  const stream = await fetch(`${url}/sync/rxdb/tasks/pull/stream?space=${space}`, { headers: { Authorization: `Bearer ${bob.token}` } })
  assert.equal(stream.status, 403)
  const pull = await fetch(`${url}/sync/rxdb/tasks/pull?space=${space}&seq=0`, { headers: { Authorization: `Bearer ${bob.token}` } })
  assert.equal(pull.status, 403)
  assert.equal((await pull.json()).error.code, 'forbidden')

  // Bob's personal collection is untouched; Ann still has everything.
  await sync(b, bob)
  assert.deepEqual((await tasks(b)).map(x => x.id), [mine.id])
  assert.equal((await tasks(a, 'shared')).length, 6)
})
