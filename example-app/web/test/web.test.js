import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { account, addNote, eventually, launch, noteItem, pending, retitle, screenshot, serverTitles, session, settled, signIn, titles, url } from './browser.js'

let browser
before(async () => {
  browser = await launch()
})
after(async () => {
  await browser?.close()
})

test('two devices of one user: one goes offline, both edit, it reloads and comes back, all converge', async () => {
  const acc = account('ann')
  const laptop = await browser.newContext()
  const phone = await browser.newContext()
  const a = await laptop.newPage()
  const b = await phone.newPage()
  await a.goto(url)
  await signIn(a, acc, { register: true })
  await addNote(a, 'Milk')
  await addNote(a, 'Bread')
  await addNote(a, 'Butter')
  await settled(a, ['Milk', 'Bread', 'Butter'])

  await b.goto(url)
  await signIn(b, acc)
  await settled(b, ['Milk', 'Bread', 'Butter'])
  // The phone's service worker is active, so it has cached the app's
  // files (at install), before the phone goes offline.
  await b.evaluate(() => navigator.serviceWorker.ready.then(() => true))

  await phone.setOffline(true)
  await eventually(async () => assert.equal(await b.getByTestId('status').getAttribute('data-online'), 'false'))
  await retitle(b, 'Milk', 'Oat milk') // loses: the laptop edits Milk later
  await retitle(b, 'Butter', 'Salted butter') // nobody else touches it
  await addNote(b, 'Eggs', 'A dozen, free range')
  await (await noteItem(b, 'Bread')).getByTestId('delete').click()
  await eventually(async () => assert.equal(await pending(b), 4))

  // The laptop, online, edits meanwhile.
  await retitle(a, 'Milk', 'Whole milk')
  await addNote(a, 'Jam', 'Apricot, for Sunday')
  await settled(a, ['Whole milk', 'Bread', 'Butter', 'Jam'])

  // The phone reloads offline: the app comes from its service worker and
  // the unsynced edits from IndexedDB.
  const doc = await b.reload()
  await b.getByTestId('new-note').waitFor()
  assert.ok(doc.fromServiceWorker(), 'the reloaded page comes from the service worker')
  assert.ok(await b.evaluate(() => navigator.serviceWorker.controller !== null), 'the service worker controls the page')
  await eventually(async () => {
    assert.equal(await pending(b), 4)
    assert.deepEqual(await titles(b), ['Eggs', 'Oat milk', 'Salted butter'])
  })
  assert.deepEqual(await serverTitles((await session(a)).token), ['Bread', 'Butter', 'Jam', 'Whole milk'], 'nothing left the phone while offline')

  await phone.setOffline(false)
  const want = ['Eggs', 'Jam', 'Salted butter', 'Whole milk']
  await settled(b, want)
  // The laptop hears of the phone's pushes on the live stream.
  await settled(a, want)
  assert.deepEqual(await serverTitles((await session(a)).token), want)
  assert.equal(await a.getByTestId('status').getAttribute('data-stream'), 'up')
  await screenshot(a, 'two-devices')
  await laptop.close()
  await phone.close()
})

test('a reload keeps unsynced edits while the server refuses them for a while, then they sync', async () => {
  const acc = account('bob')
  const ctx = await browser.newContext()
  const page = await ctx.newPage()
  await page.goto(url)
  await signIn(page, acc, { register: true })
  await addNote(page, 'Synced first')
  await settled(page, ['Synced first'])
  // The sync routes answer 503 (a deploy in progress): edits queue up.
  await ctx.route('**/sync/push', (route) => route.fulfill({ status: 503, contentType: 'application/json', headers: { 'Retry-After': '1' }, body: '{"error":{"code":"unavailable","message":"deploying"}}' }))
  await addNote(page, 'Queued')
  await retitle(page, 'Synced first', 'Edited while down')
  await eventually(async () => assert.equal(await pending(page), 2))
  await page.reload()
  await page.getByTestId('new-note').waitFor()
  await eventually(async () => {
    assert.equal(await pending(page), 2)
    assert.deepEqual(await titles(page), ['Edited while down', 'Queued'])
  })
  assert.deepEqual(await serverTitles((await session(page)).token), ['Synced first'])
  await ctx.unroute('**/sync/push')
  await page.getByTestId('sync-now').click()
  await settled(page, ['Edited while down', 'Queued'])
  assert.deepEqual(await serverTitles((await session(page)).token), ['Edited while down', 'Queued'])
  await ctx.close()
})

test('a note the server refuses is reported and leaves the queue; another user sees none of it', async () => {
  const ctx = await browser.newContext()
  const page = await ctx.newPage()
  await page.goto(url)
  await signIn(page, account('cat'), { register: true })
  await addNote(page, 'x'.repeat(150))
  const li = await noteItem(page, 'x'.repeat(150))
  // The page's field allows 200 characters; past the schema's limit the
  // server refuses the change.
  await li.getByTestId('title').evaluate((el) => el.removeAttribute('maxlength'))
  await retitle(page, 'x'.repeat(150), 'y'.repeat(201))
  await eventually(async () => assert.match(await page.getByTestId('problems').textContent(), /refused.*\/data\/title/))
  await eventually(async () => assert.equal(await pending(page), 0))

  const other = await browser.newContext()
  const p2 = await other.newPage()
  await p2.goto(url)
  await signIn(p2, account('dan'), { register: true })
  await eventually(async () => assert.equal(await pending(p2), 0))
  assert.deepEqual(await titles(p2), [])
  await ctx.close()
  await other.close()
})

test('a first sync of many notes comes compressed and lands whole', async () => {
  const acc = account('fay')
  const res = await fetch(`${url}/auth/register`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(acc) })
  assert.equal(res.status, 201)
  const { token } = await res.json()
  const changes = Array.from({ length: 60 }, (_, i) => ({
    model: 'data.Note', uid: `bulk-${i}`, modify_at: new Date().toISOString(),
    data: { title: `Note ${i}`, body: 'The same long body, which compresses well. '.repeat(8), tags: [], pinned: false },
  }))
  const push = await fetch(`${url}/sync/push`, { method: 'POST', headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ device_id: 'bulk', changes }) })
  assert.equal(push.status, 200)

  const ctx = await browser.newContext()
  const page = await ctx.newPage()
  const encodings = []
  page.on('response', async (r) => {
    if (r.url().includes('/sync/pull')) encodings.push((await r.allHeaders())['content-encoding'] ?? '')
  })
  await page.goto(url)
  await signIn(page, acc)
  await settled(page, changes.map((c) => c.data.title))
  assert.ok(encodings.some((e) => e === 'zstd' || e === 'gzip'), `pull answers' encodings: ${encodings}`)
  await ctx.close()
})

test('two tabs of one browser show each other’s offline edits at once', async () => {
  const ctx = await browser.newContext()
  const one = await ctx.newPage()
  await one.goto(url)
  await signIn(one, account('gus'), { register: true })
  await addNote(one, 'Shared')
  await settled(one, ['Shared'])
  const two = await ctx.newPage()
  await two.goto(url)
  await settled(two, ['Shared'])
  await ctx.setOffline(true)
  await addNote(one, 'Written in tab one')
  await retitle(one, 'Shared', 'Renamed in tab one')
  // No server involved: the tabs share IndexedDB and tell each other.
  await eventually(async () => assert.deepEqual(await titles(two), ['Renamed in tab one', 'Written in tab one']))
  await ctx.setOffline(false)
  await settled(one, ['Renamed in tab one', 'Written in tab one'])
  assert.deepEqual(await serverTitles((await session(one)).token), ['Renamed in tab one', 'Written in tab one'])
  await ctx.close()
})
