// Per-field merge through the JavaScript client, against the example
// app's data.Doc (policies.FieldLWW): two devices of one user edit
// different fields of one doc offline, and both edits survive on both
// devices and the server; a field both edit goes to the later edit.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { device, eventually, signUp } from './helpers.js'
import { pullLive } from '../../../example-app/e2e/ferry.js'

const doc = async (client, uid) => (await client.list('data.Doc')).find((r) => r.uid === uid)?.data
const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

test('two devices edit different fields of a data.Doc offline: both edits survive', async () => {
  const ann = await signUp('ann')
  const a = await device(ann)
  const b = await device(ann)
  await a.put('data.Doc', 'd1', { title: 'Plan', body: 'first draft', tags: 'work' })
  await a.sync()
  await b.sync()
  assert.deepEqual(await doc(b, 'd1'), { title: 'Plan', body: 'first draft', tags: 'work' })

  // Offline: A retitles, then B (later) rewrites the body. B syncs first,
  // so A's older edit arrives second: under record-level LWW it would lose.
  await a.put('data.Doc', 'd1', { ...(await doc(a, 'd1')), title: 'Plan B' })
  await pause(5)
  await b.put('data.Doc', 'd1', { ...(await doc(b, 'd1')), body: 'second draft' })
  const queued = (await a.store.pending(0, 100)).find((c) => c.uid === 'd1')
  assert.ok(queued?.fields_modify_at?.body, 'the queued change names the fields it did not edit')
  assert.equal((await b.sync()).applied, 1)
  const ra = await a.sync()
  assert.equal(ra.applied, 1)
  await b.sync()
  const want = { title: 'Plan B', body: 'second draft', tags: 'work' }
  assert.deepEqual(await doc(a, 'd1'), want)
  assert.deepEqual(await doc(b, 'd1'), want)
  const [server] = (await pullLive(ann.token, 'data.Doc')).filter((r) => r.uid === 'd1')
  assert.deepEqual(server.data, want)
  assert.ok(server.fields_modify_at, 'the server keeps the record\'s field times')

  // Both edit the title: the later edit wins, whichever syncs last.
  await b.put('data.Doc', 'd1', { ...want, title: 'older' })
  await pause(5)
  await a.put('data.Doc', 'd1', { ...want, title: 'newer' })
  await a.sync()
  await b.sync()
  await a.sync()
  await eventually(async () => {
    assert.equal((await doc(a, 'd1')).title, 'newer')
    assert.equal((await doc(b, 'd1')).title, 'newer')
  })
})
