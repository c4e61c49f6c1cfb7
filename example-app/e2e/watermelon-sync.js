import { synchronize } from '@nozbe/watermelondb/sync/index.js'

// syncWithFerry synchronizes a WatermelonDB database with a Ferry server:
// url is the server's address, token the user's bearer token, pageSize
// (optional) caps the records of one pull, space (optional) names the
// shared space this database holds (one database per space). It
// synchronizes again while the server says it has more, and returns
// { spaceRemoved: true } once the user has lost the space: the database's
// records of it are deleted by then, and the app can drop the database.
export async function syncWithFerry(database, { url, token, pageSize, space }) {
  const headers = { Authorization: `Bearer ${token}` }
  const spaceQuery = space ? `&space=${encodeURIComponent(space)}` : ''
  let hasMore = true
  let spaceRemoved = false
  while (hasMore) {
    await synchronize({
      database,
      sendCreatedAsUpdated: true, // Ferry sends every live record as "updated"
      pullChanges: async ({ lastPulledAt, schemaVersion, migration }) => {
        const query = new URLSearchParams({
          last_pulled_at: String(lastPulledAt ?? null),
          schema_version: String(schemaVersion),
          migration: JSON.stringify(migration ?? null),
        })
        if (pageSize) query.set('limit', String(pageSize))
        const res = await fetch(`${url}/sync/watermelon?${query}${spaceQuery}`, { headers })
        if (!res.ok) throw new Error(`pull: ${res.status} ${await res.text()}`)
        const { changes, timestamp, has_more, space_removed } = await res.json()
        hasMore = has_more
        spaceRemoved = Boolean(space_removed)
        return { changes, timestamp }
      },
      pushChanges: async ({ changes, lastPulledAt }) => {
        const res = await fetch(`${url}/sync/watermelon?last_pulled_at=${lastPulledAt}${spaceQuery}`, {
          method: 'POST',
          headers: { ...headers, 'Content-Type': 'application/json' },
          body: JSON.stringify(changes),
        })
        if (!res.ok) throw new Error(`push: ${res.status} ${await res.text()}`)
        const { rejected } = await res.json()
        if (rejected.length > 0) console.warn('Ferry refused and reverted', rejected)
      },
    })
  }
  return { spaceRemoved }
}
