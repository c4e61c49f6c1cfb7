// An RxDB device for the end-to-end tests: the real rxdb with its memory
// storage.
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { createRxDatabase } from 'rxdb'
import { getRxStorageMemory } from 'rxdb/plugins/storage-memory'
import { replicateWithFerry } from './rxdb-sync.js'
import { url, normalize } from './ferry.js'

const taskSchema = {
  version: 0,
  primaryKey: 'id',
  type: 'object',
  properties: {
    id: { type: 'string', maxLength: 64 },
    title: { type: 'string' },
    body: { type: 'string' },
    count: { type: 'integer' },
    done: { type: 'boolean' },
  },
  required: ['id', 'title'],
}

const docSchema = {
  version: 0,
  primaryKey: 'id',
  type: 'object',
  properties: {
    id: { type: 'string', maxLength: 64 },
    title: { type: 'string' },
    body: { type: 'string' },
    tags: { type: 'string' },
  },
  required: ['id', 'title'],
}

const opened = []
// newDevice opens a device with the collection "tasks" (the user's
// personal tasks) and one more of tasks per name in spaces (a shared
// space's, replicated with syncSpace).
export async function newDevice(spaces = []) {
  const db = await createRxDatabase({ name: `device${randomUUID().replaceAll('-', '')}`, storage: getRxStorageMemory(), multiInstance: false })
  await db.addCollections(Object.fromEntries([['tasks', { schema: taskSchema }], ['docs', { schema: docSchema }],
    ...spaces.map(n => [n, { schema: taskSchema }])]))
  opened.push(db)
  return db
}

// sync runs one replication cycle (pull, then push) of the collection
// (default "tasks") and stops.
export async function sync(db, user, batchSize = 50, collection = 'tasks') {
  const replication = replicateWithFerry(db[collection], { url, token: user.token, live: false, batchSize })
  const errors = []
  replication.error$.subscribe(err => errors.push(err))
  await replication.awaitInitialReplication()
  await replication.cancel()
  assert.deepEqual(errors, [])
}

// syncSpace runs one replication cycle of a local collection with the
// server's collection "tasks" of a shared space; refused collects the
// server's reasons for refused rows.
export async function syncSpace(collection, user, space, { refused = [], batchSize = 50 } = {}) {
  const replication = replicateWithFerry(collection, { url, token: user.token, live: false, batchSize, space, remote: 'tasks',
    onRefused: rows => refused.push(...rows) })
  const errors = []
  replication.error$.subscribe(err => errors.push(err))
  await replication.awaitInitialReplication()
  await replication.cancel()
  assert.deepEqual(errors, [])
  return refused
}

// tasks returns a device's tasks of the collection (default "tasks"),
// normalized.
export async function tasks(db, name = 'tasks') {
  const docs = await db[name].find().exec()
  return normalize(docs.map(d => d.toJSON()))
}

export const newTask = fields => ({ id: randomUUID(), body: '', count: 0, done: false, ...fields })

// closeAll closes every device opened so far.
export async function closeAll() {
  await Promise.all(opened.splice(0).map(db => db.close()))
}
