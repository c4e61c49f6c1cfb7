// End-to-end test across clients: a WatermelonDB device and an RxDB device
// of one user, and the native protocol, see one set of records.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { syncWithFerry } from './watermelon-sync.js'
import * as watermelon from './watermelon-device.js'
import * as rxdb from './rxdb-device.js'
import { url, signUp, nativePush, serverTasks } from './ferry.js'

test('WatermelonDB, RxDB and native clients share records', { skip: !url && 'FERRY_URL is not set' }, async t => {
  t.after(rxdb.closeAll)
  const ann = await signUp('ann')
  const wm = watermelon.newDevice()
  const rx = await rxdb.newDevice()
  const wmSync = () => syncWithFerry(wm, { url, token: ann.token })
  const rxSync = () => rxdb.sync(rx, ann)

  const fromWm = (await watermelon.create(wm, { title: 'From WatermelonDB', count: 1 })).id
  await wmSync()
  await rx.tasks.insert(rxdb.newTask({ title: 'From RxDB', count: 2 }))
  await rxSync()
  const fromNative = `native-${randomUUID()}`
  await nativePush(ann.token, [{ id: fromNative, title: 'From native', count: 3 }])
  await wmSync()
  await rxSync()
  let server = await serverTasks(ann.token)
  assert.equal(server.length, 3)
  assert.deepEqual(await watermelon.tasks(wm), server)
  assert.deepEqual(await rxdb.tasks(rx), server)

  // RxDB edits the WatermelonDB record, WatermelonDB deletes the native one.
  await (await rx.tasks.findOne(fromWm).exec()).incrementalPatch({ done: true, body: 'edited in RxDB' })
  await watermelon.remove(wm, fromNative)
  await rxSync()
  await wmSync()
  await rxSync()
  server = await serverTasks(ann.token)
  assert.equal(server.length, 2)
  assert.deepEqual(server.find(x => x.id === fromWm), { id: fromWm, title: 'From WatermelonDB', body: 'edited in RxDB', count: 1, done: true })
  assert.deepEqual(await watermelon.tasks(wm), server)
  assert.deepEqual(await rxdb.tasks(rx), server)
})
