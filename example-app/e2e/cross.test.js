// End-to-end test across clients: a WatermelonDB device and an RxDB device
// of one user, and the native protocol, see one set of records.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { syncWithFerry } from './watermelon-sync.js'
import * as watermelon from './watermelon-device.js'
import * as rxdb from './rxdb-device.js'
import { url, signUp, nativePush, serverTasks, countRequests } from './ferry.js'

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

// Apps use fixed ids (an RxDB settings document, a WatermelonDB seed row).
// Records are identified by owner + model + uid, so two users of one
// server each hold their own record under the same id: neither is refused
// (an RxDB device whose write is refused pushes it again forever), neither
// sees the other's, and each user's devices converge.
test('two users with the same fixed ids each converge', { skip: !url && 'FERRY_URL is not set' }, async t => {
  t.after(rxdb.closeAll)
  const users = []
  for (const name of ['ann', 'bob']) {
    const user = await signUp(`${name}-fixed`)
    const wm = watermelon.newDevice()
    const rx = await rxdb.newDevice()
    users.push({
      name, user, wm, rx,
      wmSync: () => syncWithFerry(wm, { url, token: user.token }),
      rxSync: () => rxdb.sync(rx, user),
    })
  }
  for (const u of users) {
    await watermelon.create(u.wm, { id: 'seed-row', title: `${u.name}'s seed`, count: 1 })
    await u.rx.tasks.insert(rxdb.newTask({ id: 'settings', title: `${u.name}'s settings` }))
  }
  const syncAll = async () => {
    for (const u of users) {
      await u.wmSync()
      const pushes = await countRequests('/push', u.rxSync)
      assert.ok(pushes <= 2, `${u.name}'s RxDB device pushed ${pushes} times in one cycle`)
    }
    for (const u of users) await u.wmSync()
  }
  await syncAll()
  for (const u of users) {
    const server = await serverTasks(u.user.token)
    assert.deepEqual(server.map(x => `${x.id}: ${x.title}`), [`seed-row: ${u.name}'s seed`, `settings: ${u.name}'s settings`])
    assert.deepEqual(await watermelon.tasks(u.wm), server)
    assert.deepEqual(await rxdb.tasks(u.rx), server)
  }

  // Ann's RxDB device edits her seed row; Bob's WatermelonDB device deletes
  // his settings. Each change reaches only its user's devices.
  const [ann, bob] = users
  await (await ann.rx.tasks.findOne('seed-row').exec()).incrementalPatch({ done: true })
  await watermelon.remove(bob.wm, 'settings')
  await syncAll()
  const annServer = await serverTasks(ann.user.token)
  assert.deepEqual(annServer.map(x => `${x.id}: ${x.done}`), ['seed-row: true', 'settings: false'])
  const bobServer = await serverTasks(bob.user.token)
  assert.deepEqual(bobServer.map(x => `${x.id}: ${x.title} ${x.done}`), ["seed-row: bob's seed false"])
  for (const [u, server] of [[ann, annServer], [bob, bobServer]]) {
    assert.deepEqual(await watermelon.tasks(u.wm), server)
    assert.deepEqual(await rxdb.tasks(u.rx), server)
  }
})
