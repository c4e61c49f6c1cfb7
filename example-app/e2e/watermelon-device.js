// A WatermelonDB device for the end-to-end tests: the real
// @nozbe/watermelondb with its LokiJS adapter, in memory.
import { Database, Model, appSchema, tableSchema } from '@nozbe/watermelondb'
import LokiJSAdapterModule from '@nozbe/watermelondb/adapters/lokijs/index.js'
import loggerModule from '@nozbe/watermelondb/utils/common/logger/index.js'
import { normalize } from './ferry.js'

const LokiJSAdapter = LokiJSAdapterModule.default ?? LokiJSAdapterModule
;(loggerModule.default ?? loggerModule).silence() // WatermelonDB's adapter logs every step

// Task is the app's model, defined without decorators.
class Task extends Model {
  static table = 'tasks'
}

// Doc is a document the server merges field by field (data.Doc, FieldLWW).
class Doc extends Model {
  static table = 'docs'
}

const schema = appSchema({
  version: 1,
  tables: [
    tableSchema({
      name: 'tasks',
      columns: [
        { name: 'title', type: 'string' },
        { name: 'body', type: 'string' },
        { name: 'count', type: 'number' },
        { name: 'done', type: 'boolean' },
      ],
    }),
    tableSchema({
      name: 'docs',
      columns: [
        { name: 'title', type: 'string' },
        { name: 'body', type: 'string' },
        { name: 'tags', type: 'string' },
      ],
    }),
  ],
})

let devices = 0
export function newDevice() {
  const adapter = new LokiJSAdapter({
    schema,
    dbName: `device-${++devices}`,
    useWebWorker: false,
    useIncrementalIndexedDB: false,
    extraLokiOptions: { autosave: false }, // in memory: no save timer to keep node running
  })
  return new Database({ adapter, modelClasses: [Task, Doc] })
}

// create makes a task; fields.id, when given, is its fixed id (a seed
// row, say) instead of WatermelonDB's random one.
export async function create(db, { id, ...fields }, table = 'tasks') {
  return db.write(() =>
    db.get(table).create(task => {
      if (id) task._raw.id = id
      for (const [k, v] of Object.entries(fields)) task._setRaw(k, v)
    }),
  )
}

export async function update(db, id, fields, table = 'tasks') {
  const task = await db.get(table).find(id)
  await db.write(() =>
    task.update(t => {
      for (const [k, v] of Object.entries(fields)) t._setRaw(k, v)
    }),
  )
}

export async function remove(db, id) {
  const task = await db.get('tasks').find(id)
  await db.write(() => task.markAsDeleted())
}

export async function tasks(db) {
  const all = await db.get('tasks').query().fetch()
  return normalize(all.map(t => t._raw))
}

// docs returns a device's docs, sorted by id, with their three fields.
export async function docs(db) {
  const all = await db.get('docs').query().fetch()
  return normalizeDocs(all.map(d => d._raw))
}

export function normalizeDocs(docs) {
  return docs
    .map(d => ({ id: d.id, title: d.title ?? '', body: d.body ?? '', tags: d.tags ?? '' }))
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
}
