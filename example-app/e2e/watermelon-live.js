import { syncWithFerry } from './watermelon-sync.js'

// syncOnHints keeps a WatermelonDB database in sync with a Ferry server
// without polling: it listens to the server's live stream and runs
// syncWithFerry whenever the server hints that the user has something to
// pull (and once when a (re)connection finds the device behind). Syncs
// never overlap; a hint during a sync makes one more. The browser's
// EventSource cannot send the bearer token, so it asks for a short-lived
// stream token first, and a new one when the stream closes (an expired
// token ends it). It returns { sync, stop }.
export function syncOnHints(database, { url, token, EventSource = globalThis.EventSource, onError = console.error }) {
  let running = null
  let again = false
  const sync = () => {
    if (running) {
      again = true
      return running
    }
    running = (async () => {
      do {
        again = false
        await syncWithFerry(database, { url, token })
      } while (again)
    })().catch(onError).finally(() => { running = null })
    return running
  }
  let events = null
  let stopped = false
  let timer = null
  const open = async () => {
    try {
      const res = await fetch(`${url}/sync/stream/token`, { method: 'POST', headers: { Authorization: `Bearer ${token}` } })
      if (!res.ok) throw new Error(`stream token: ${res.status}`)
      const { url: path } = await res.json()
      if (stopped) return
      events = new EventSource(url + path)
      events.addEventListener('changes', sync)
      events.onerror = () => {
        // EventSource reconnects by itself, resending the last event id;
        // once it gives up (401: the token expired) it needs a new token.
        if (events.readyState === EventSource.CLOSED) retry()
      }
    } catch (err) {
      onError(err)
      retry()
    }
  }
  const retry = () => {
    if (!stopped) timer = setTimeout(open, 2000)
  }
  open()
  return {
    sync,
    stop() {
      stopped = true
      clearTimeout(timer)
      events?.close()
    },
  }
}
