// Helpers of the browser tests: Debian's Chromium driven by
// playwright-core, against the example app at FERRY_URL (started by
// TestWeb in example-app, or by hand with `go run ./example-app`).
import { chromium } from 'playwright-core'
import { randomUUID } from 'node:crypto'
import { mkdirSync } from 'node:fs'
import assert from 'node:assert/strict'
import { passes as eventually, pullLive, url } from '../../e2e/ferry.js'

if (!url) throw new Error('FERRY_URL must name a running Ferry example app')
export { eventually, url }

// launch starts a headless Chromium (FERRY_CHROMIUM, default Debian's).
export function launch() {
  return chromium.launch({
    executablePath: process.env.FERRY_CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  })
}

// account is a fresh email and password.
export function account(name) {
  return { name, email: `${name}-${randomUUID()}@example.com`.toLowerCase(), password: 'correct horse' }
}

// signIn fills the page's sign-in form; register creates the account.
export async function signIn(page, acc, { register = false } = {}) {
  const form = page.getByTestId('auth')
  await form.locator('input[name=email]').fill(acc.email)
  await form.locator('input[name=password]').fill(acc.password)
  await form.locator('input[name=name]').fill(acc.name)
  await page.getByTestId(register ? 'register' : 'login').click()
  await page.getByTestId('new-note').waitFor()
}

// addNote adds a note through the page's form.
export async function addNote(page, title, body = '') {
  await page.getByTestId('new-title').fill(title)
  await page.getByTestId('new-body').fill(body)
  await page.getByTestId('add').click()
  await noteItem(page, title)
}

// note is the list item whose title field holds title.
export async function noteItem(page, title) {
  const handle = await page.waitForFunction((t) => {
    for (const li of document.querySelectorAll('[data-testid=note]')) {
      if (li.querySelector('[data-testid=title]').value === t) return li.dataset.uid
    }
    return null
  }, title)
  const uid = await handle.jsonValue()
  return page.locator(`li[data-uid="${uid}"]`)
}

// retitle changes a note's title and leaves the field, as a person would.
export async function retitle(page, from, to) {
  const li = await noteItem(page, from)
  const input = li.getByTestId('title')
  await input.fill(to)
  await input.press('Tab')
  await page.waitForFunction(([uid, t]) => document.querySelector(`li[data-uid="${uid}"] [data-testid=title]`)?.value === t, [await li.getAttribute('data-uid'), to])
}

// titles lists the page's notes' titles, sorted.
export function titles(page) {
  return page.$$eval('[data-testid=note] [data-testid=title]', (els) => els.map((e) => e.value).sort())
}

// pending is the page's count of unsynced changes.
export async function pending(page) {
  return Number(await page.getByTestId('status').getAttribute('data-pending'))
}

// settled waits until the page has nothing unsynced and its titles are want.
export async function settled(page, want, ms = 15000) {
  await eventually(async () => {
    assert.equal(await pending(page), 0, 'unsynced changes left')
    assert.deepEqual(await titles(page), [...want].sort())
  }, ms)
}

// session is what the page keeps in localStorage: the server, token and user.
export async function session(page) {
  return JSON.parse(await page.evaluate(() => localStorage.getItem('ferry.session')))
}

// serverTitles pulls the user's live notes' titles straight from the server.
export async function serverTitles(token) {
  return (await pullLive(token, 'data.Note')).map((r) => r.data.title).sort()
}

// screenshot saves a page's picture under test-results/ (and where
// FERRY_SCREENSHOT says, for the README).
export async function screenshot(page, name) {
  mkdirSync('test-results', { recursive: true })
  await page.screenshot({ path: `test-results/${name}.png`, fullPage: true })
  if (process.env.FERRY_SCREENSHOT && name === 'two-devices') await page.screenshot({ path: process.env.FERRY_SCREENSHOT, fullPage: true })
}
