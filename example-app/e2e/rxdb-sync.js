import { replicateRxCollection } from 'rxdb/plugins/replication'
import { Subject } from 'rxjs'

// replicateWithFerry replicates an RxDB collection (primary key "id") with
// the Ferry collection of the same name (or remote): url is the server's
// address, token the user's bearer token. With space, the collection
// replicates that shared space's documents (one local collection per
// space). With live: true it also listens to the server's event stream.
// onRefused, when given, is told why the server refused rows of a push
// ([{id, status, code?, errors?}]); RxDB itself only gets their server
// state.
export function replicateWithFerry(collection, { url, token, live = true, batchSize = 100, space, remote = collection.name, onRefused }) {
  const base = `${url}/sync/rxdb/${remote}`
  const scope = space ? `space=${encodeURIComponent(space)}&` : ''
  const headers = { Authorization: `Bearer ${token}` }
  const events$ = new Subject()
  const stop = new AbortController()
  if (live) listen(`${base}/pull/stream?${scope}`, headers, stop.signal, event => events$.next(event))
  const replication = replicateRxCollection({
    collection,
    replicationIdentifier: `ferry ${base} ${space ?? ''}`,
    live,
    pull: {
      batchSize,
      handler: async (checkpoint, limit) => {
        // The checkpoint goes back whole: {seq}, and a space's sig, upto, drop.
        const q = new URLSearchParams({ seq: '0', ...checkpoint, limit: String(limit) })
        const res = await fetch(`${base}/pull?${scope}${q}`, { headers })
        if (!res.ok) throw new Error(`pull: ${res.status} ${await res.text()}`)
        return res.json() // {documents, checkpoint}
      },
      stream$: events$.asObservable(),
    },
    push: {
      batchSize,
      handler: async rows => {
        const res = await fetch(`${base}/push?${scope}`, {
          method: 'POST',
          headers: { ...headers, 'Content-Type': 'application/json' },
          body: JSON.stringify(rows),
        })
        if (!res.ok) throw new Error(`push: ${res.status} ${await res.text()}`)
        const refused = res.headers.get('Ferry-Refused')
        if (refused && onRefused) onRefused(JSON.parse(refused))
        return res.json() // the server's documents of the rows that conflicted or were refused
      },
    },
  })
  replication.canceled$.subscribe(canceled => canceled && stop.abort())
  return replication
}

// listen reads the server's Server-Sent Events with fetch (EventSource
// cannot send the Authorization header) and reconnects after a second
// when the connection drops; the server starts every connection with
// "RESYNC".
async function listen(url, headers, signal, onEvent) {
  while (!signal.aborted) {
    try {
      const res = await fetch(url, { headers, signal })
      if (!res.ok) throw new Error(`stream: ${res.status}`)
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader()
      let buffer = ''
      for (;;) {
        const { value, done } = await reader.read()
        if (done) break
        buffer += value
        let end
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const lines = buffer.slice(0, end).split('\n')
          buffer = buffer.slice(end + 2)
          const data = lines.filter(l => l.startsWith('data: ')).map(l => l.slice(6)).join('\n')
          if (data) onEvent(JSON.parse(data))
        }
      }
    } catch {
      // dropped, or stopped: retry unless stopped
    }
    if (!signal.aborted) await new Promise(resolve => setTimeout(resolve, 1000))
  }
}
