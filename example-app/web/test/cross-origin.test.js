// The web app served from another origin than the server's: the server
// lists that origin in FERRY_CORS_ORIGINS (TestWeb starts it with
// http://127.0.0.1:$FERRY_CROSS_ORIGIN_PORT), and refuses every other.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import { readFile } from 'node:fs/promises'
import { extname, join, normalize } from 'node:path'
import { account, addNote, eventually, launch, serverTitles, session, settled, signIn, url } from './browser.js'

const allowedPort = Number(process.env.FERRY_CROSS_ORIGIN_PORT)
const types = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css' }

// serveApp serves the built app (dist/) on port (0: any free one), as a
// static host of its own would.
function serveApp(port) {
  const root = new URL('../dist/', import.meta.url).pathname
  const srv = createServer(async (req, res) => {
    const path = new URL(req.url, 'http://x').pathname
    const file = normalize(join(root, path === '/' ? 'index.html' : path))
    try {
      if (!file.startsWith(root)) throw new Error('outside')
      const body = await readFile(file)
      res.writeHead(200, { 'Content-Type': types[extname(file)] ?? 'application/octet-stream', 'Cache-Control': 'no-cache' })
      res.end(body)
    } catch {
      res.writeHead(404).end()
    }
  })
  return new Promise((resolve) => srv.listen(port, '127.0.0.1', () => resolve(srv)))
}

let browser
const hosts = []
before(async () => {
  assert.ok(allowedPort > 0, 'FERRY_CROSS_ORIGIN_PORT names the port the server allows')
  browser = await launch()
})
after(async () => {
  await browser?.close()
  for (const h of hosts) h.close()
})

test('a page of an allowed origin signs up, syncs and hears the live stream', async () => {
  const host = await serveApp(allowedPort)
  hosts.push(host)
  const origin = `http://127.0.0.1:${allowedPort}`
  assert.notEqual(origin, url, 'the page must come from another origin than the server')
  const ctx = await browser.newContext()
  const page = await ctx.newPage()
  await page.goto(`${origin}/?server=${encodeURIComponent(url)}`)
  await signIn(page, account('eve'), { register: true })
  await addNote(page, 'From another origin')
  await settled(page, ['From another origin'])
  const { token, server } = await session(page)
  assert.equal(server, url)
  assert.deepEqual(await serverTitles(token), ['From another origin'])
  await eventually(async () => assert.equal(await page.getByTestId('status').getAttribute('data-stream'), 'up'))
  // A write from elsewhere reaches the page through the stream.
  const res = await fetch(`${url}/sync/push`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ device_id: 'curl', changes: [{ model: 'data.Note', uid: 'from-curl', modify_at: new Date().toISOString(), data: { title: 'Pushed elsewhere' } }] }),
  })
  assert.equal(res.status, 200)
  await settled(page, ['From another origin', 'Pushed elsewhere'])
  await ctx.close()
})

test('a page of an origin the server does not list cannot reach it', async () => {
  const host = await serveApp(0)
  hosts.push(host)
  const origin = `http://127.0.0.1:${host.address().port}`
  const ctx = await browser.newContext()
  const page = await ctx.newPage()
  const refused = page.waitForEvent('console', (m) => /CORS|Access-Control/i.test(m.text()))
  await page.goto(`${origin}/?server=${encodeURIComponent(url)}`)
  const acc = account('mallory')
  const form = page.getByTestId('auth')
  await form.locator('input[name=email]').fill(acc.email)
  await form.locator('input[name=password]').fill(acc.password)
  await page.getByTestId('register').click()
  await eventually(async () => assert.match(await page.getByTestId('auth-error').textContent(), /Cannot reach the server/))
  await refused
  // The server's answer to that origin, seen without a browser: 403 in the error shape.
  const res = await fetch(`${url}/auth/register`, { method: 'OPTIONS', headers: { Origin: origin, 'Access-Control-Request-Method': 'POST' } })
  assert.equal(res.status, 403)
  assert.equal(res.headers.get('access-control-allow-origin'), null)
  assert.equal((await res.json()).error.code, 'forbidden')
  await ctx.close()
})
