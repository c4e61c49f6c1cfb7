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
  return new Database({ adapter, modelClasses: [Task] })
}

// create makes a task; fields.id, when given, is its fixed id (a seed
// row, say) instead of WatermelonDB's random one.
export async function create(db, { id, ...fields }) {
  return db.write(() =>
    db.get('tasks').create(task => {
      if (id) task._raw.id = id
      for (const [k, v] of Object.entries(fields)) task._setRaw(k, v)
    }),
  )
}

export async function update(db, id, fields) {
  const task = await db.get('tasks').find(id)
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
