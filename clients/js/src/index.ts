// @ferrysync/client: a client of Ferry's sync protocol v1 for browsers
// and Node. See README.md beside this folder.
export * from './wire.js'
export * from './store.js'
export * from './client.js'
