import { test } from 'node:test'
import assert from 'node:assert/strict'
import { editedFieldTimes } from '../dist/index.js'

const t0 = '2026-03-01T12:00:00.000Z'
const t1 = '2026-03-01T12:00:01.000Z'
const t2 = '2026-03-01T12:00:02.000Z'

test('a new record names no field times: every field is at its modify_at', () => {
  assert.equal(editedFieldTimes(undefined, { modify_at: t1, data: { a: 1 } }), undefined)
})

test('an edit names the fields it did not change, at the time they had', () => {
  const cur = { model: 'm', uid: 'u', modify_at: t0, is_deleted: false, data: { title: 'x', body: 'y', o: { k: [1, 2] } } }
  assert.deepEqual(editedFieldTimes(cur, { modify_at: t1, data: { title: 'new', body: 'y', o: { k: [1, 2] } } }), { body: t0, o: t0 })
  // Key order inside a value is no edit.
  assert.deepEqual(editedFieldTimes(cur, { modify_at: t1, data: { o: { k: [1, 2] }, body: 'y', title: 'x' } }), { title: t0, body: t0, o: t0 })
})

test('a removed field is named at the time of its removal, and stays named', () => {
  const cur = { model: 'm', uid: 'u', modify_at: t0, is_deleted: false, data: { a: 1, b: 2 } }
  const first = editedFieldTimes(cur, { modify_at: t1, data: { a: 1 } })
  assert.deepEqual(first, { a: t0, b: t1 })
  const next = { ...cur, modify_at: t1, data: { a: 1 }, fields_modify_at: first }
  assert.deepEqual(editedFieldTimes(next, { modify_at: t2, data: { a: 2 } }), { b: t1 })
})
