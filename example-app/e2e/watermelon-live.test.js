// End-to-end test of WatermelonDB syncing on the server's live hints
// (watermelon-live.js, the README's "sync now" trigger) against
// FERRY_URL, with the eventsource package standing in for the browser's
// EventSource.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { EventSource } from 'eventsource'
import { syncWithFerry } from './watermelon-sync.js'
import { syncOnHints } from './watermelon-live.js'
import { newDevice, create, tasks } from './watermelon-device.js'
import { url, signUp, eventually } from './ferry.js'

test('WatermelonDB syncs on live hints', { skip: !url && 'FERRY_URL is not set' }, async t => {
  const ann = await signUp('ann')
  const a = newDevice()
  const b = newDevice()
  const errors = []
  const live = syncOnHints(b, { url, token: ann.token, EventSource, onError: err => errors.push(err) })
  t.after(() => live.stop())

  // A writes and syncs; B only listens.
  await create(a, { title: 'Heard live', body: '', count: 1, done: false })
  await syncWithFerry(a, { url, token: ann.token })
  await eventually(async () => (await tasks(b)).some(x => x.title === 'Heard live'), 'the task on the listening device')

  // A burst of syncs: B catches up with all of it.
  for (let i = 0; i < 5; i++) {
    await create(a, { title: `Burst ${i}`, body: '', count: i, done: false })
    await syncWithFerry(a, { url, token: ann.token })
  }
  await eventually(async () => JSON.stringify(await tasks(a)) === JSON.stringify(await tasks(b)), 'both devices equal')
  assert.deepEqual(errors, [])
})
