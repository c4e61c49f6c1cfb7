// Ferry Notes' service worker: the app's own files, network first, so a
// new build arrives whenever the browser is online, and from the cache
// when it is not. Sync and account requests are never touched: the
// client queues and retries those itself.
const CACHE = 'ferry-notes-v1'
const SHELL = ['./', './assets/app.js', './assets/app.css']

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()))
})

self.addEventListener('activate', (event) => {
  event.waitUntil(self.clients.claim())
})

self.addEventListener('fetch', (event) => {
  const req = event.request
  const url = new URL(req.url)
  if (req.method !== 'GET' || url.origin !== self.location.origin) return
  if (url.pathname.startsWith('/sync/') || url.pathname.startsWith('/auth/') || url.pathname === '/healthz') return
  event.respondWith(
    fetch(req)
      .then((resp) => {
        if (resp.ok) {
          const copy = resp.clone()
          caches.open(CACHE).then((c) => c.put(req, copy))
        }
        return resp
      })
      .catch(() => caches.match(req, { ignoreSearch: true }).then((hit) => hit || Response.error())),
  )
})
