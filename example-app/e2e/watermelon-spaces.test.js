// End-to-end test of shared spaces through the WatermelonDB adapter, with
// the real @nozbe/watermelondb against FERRY_URL: one local database per
// space, synchronized with ?space=; a writer's edits go both ways, a
// reader's are refused with the reason, and a removed member's database
// loses every record of the space on its next sync, which says
// spaceRemoved, while the member's personal database keeps its own.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { syncWithFerry } from './watermelon-sync.js'
import { newDevice, create, update, tasks } from './watermelon-device.js'
import { url, signUp, nativeChanges } from './ferry.js'

const titles = async db => (await tasks(db)).map(t => t.title).sort()

test('a WatermelonDB database of a shared space: share, write, demote, remove', { skip: !url && 'FERRY_URL is not set' }, async () => {
  const ann = await signUp('ann')
  const bob = await signUp('bob')
  const space = randomUUID()
  const role = r => ({ model: 'ferry.Member', uid: bob.id, space, data: { role: r } })
  await nativeChanges(ann.token, [{ model: 'ferry.Space', uid: space, space, data: { name: 'groceries' } }])
  await nativeChanges(ann.token, [role('writer')])
  const sync = (db, user, opts = {}) => syncWithFerry(db, { url, token: user.token, space, ...opts })

  // Ann's database of the space, Bob's, and Bob's personal one.
  const annShared = newDevice()
  const bobShared = newDevice()
  const bobOwn = newDevice()
  for (const title of ['Milk', 'Bread', 'Eggs']) await create(annShared, { title, body: '', count: 0, done: false })
  await sync(annShared, ann)
  await create(bobOwn, { title: 'Bob alone', body: '', count: 0, done: false })
  await syncWithFerry(bobOwn, { url, token: bob.token })

  // Bob's database pulls the space in pages of 2.
  assert.deepEqual(await sync(bobShared, bob, { pageSize: 2 }), { spaceRemoved: false })
  assert.deepEqual(await titles(bobShared), ['Bread', 'Eggs', 'Milk'])
  assert.deepEqual(await titles(bobOwn), ['Bob alone'], "the space's tasks stay out of Bob's personal database")

  // Bob writes; Ann gets it.
  const milk = (await tasks(bobShared)).find(t => t.title === 'Milk')
  await update(bobShared, milk.id, { count: 2 })
  await create(bobShared, { title: 'Butter (Bob)', body: '', count: 0, done: false })
  await sync(bobShared, bob)
  await sync(annShared, ann)
  assert.deepEqual(await tasks(annShared), await tasks(bobShared))
  assert.equal((await tasks(annShared)).find(t => t.id === milk.id).count, 2)

  // A reader's edit is refused; Ann's database never sees it.
  await nativeChanges(ann.token, [role('reader')])
  const bread = (await tasks(bobShared)).find(t => t.title === 'Bread')
  await update(bobShared, bread.id, { title: 'Rye bread' })
  const warn = console.warn
  const refused = []
  console.warn = (_msg, rejected) => refused.push(...rejected)
  try {
    await sync(bobShared, bob)
  } finally {
    console.warn = warn
  }
  assert.equal(refused.length, 1, JSON.stringify(refused))
  assert.equal(refused[0].id, bread.id)
  assert.equal(refused[0].code, 'forbidden')
  assert.equal(refused[0].errors[0].path, '/space')
  await sync(annShared, ann)
  assert.ok((await titles(annShared)).includes('Bread'))

  // Removed: Bob's next sync of the space deletes every task of it (in
  // pages) and says so; nothing Ann writes afterwards reaches him.
  await nativeChanges(ann.token, [{ ...role('reader'), is_deleted: true }])
  await create(annShared, { title: 'After Bob', body: '', count: 0, done: false })
  await sync(annShared, ann)
  assert.deepEqual(await sync(bobShared, bob, { pageSize: 2 }), { spaceRemoved: true })
  assert.deepEqual(await tasks(bobShared), [], 'no task of the lost space is left')
  assert.deepEqual(await sync(bobShared, bob), { spaceRemoved: true })
  assert.deepEqual(await tasks(bobShared), [])
  await syncWithFerry(bobOwn, { url, token: bob.token })
  assert.deepEqual(await titles(bobOwn), ['Bob alone'])

  // A stranger's database of the space is refused outright.
  const carol = await signUp('carol')
  await assert.rejects(syncWithFerry(newDevice(), { url, token: carol.token, space }), /pull: 403/)
})
