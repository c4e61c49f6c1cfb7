// End-to-end test of the blobs plugin with the real tus-js-client: a
// device attaches a photo of several MB to a note, the connection is
// killed in the middle of the upload and the client resumes (by itself,
// and again from a new Upload given the old one's URL); a second device
// finds the photo through the attachment record it pulls and downloads
// it, the second half with Range, and the bytes match.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes, randomUUID } from 'node:crypto'
import net from 'node:net'
import * as tus from 'tus-js-client'
import { url, signUp } from './ferry.js'

// cuttingProxy forwards TCP to the server and kills the connection that
// carries byte cutAt of all the client sent (once).
async function cuttingProxy(target, cutAt) {
  const { hostname, port } = new URL(target)
  let sent = 0
  let cut = false
  const server = net.createServer(client => {
    const upstream = net.connect(Number(port), hostname)
    client.on('data', chunk => {
      sent += chunk.length
      if (!cut && sent >= cutAt) {
        cut = true
        client.destroy()
        upstream.destroy()
        return
      }
      upstream.write(chunk)
    })
    upstream.on('data', chunk => client.write(chunk))
    client.on('error', () => upstream.destroy())
    upstream.on('error', () => client.destroy())
    client.on('close', () => upstream.destroy())
    upstream.on('close', () => client.destroy())
  })
  await new Promise(resolve => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    sent: () => sent,
    wasCut: () => cut,
    close: () => new Promise(resolve => server.close(resolve)),
  }
}

function upload(file, hash, endpoint, token, extra = {}) {
  return new Promise((resolve, reject) => {
    const up = new tus.Upload(file, {
      endpoint: `${endpoint}/sync/blobs/uploads`,
      headers: { Authorization: `Bearer ${token}` },
      metadata: { sha256: hash, filetype: 'image/jpeg' },
      chunkSize: 1 << 20,
      retryDelays: [0, 100, 300, 1000],
      onError: reject,
      onSuccess: () => resolve(up),
      ...extra,
    })
    up.start()
  })
}

async function pushAttachment(token, uid, hash, size) {
  const res = await fetch(`${url}/sync/push`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({
      changes: [{
        model: 'data.Attachment', uid, modify_at: new Date().toISOString(),
        data: { note: 'n1', caption: 'beach', file: { $blob: `sha256:${hash}`, size, type: 'image/jpeg' } },
      }],
    }),
  })
  assert.equal(res.status, 200)
  const { results } = await res.json()
  assert.equal(results[0].status, 'applied', JSON.stringify(results[0]))
  return results[0]
}

test('tus-js-client uploads resume after a killed connection; another device downloads', { skip: !url && 'FERRY_URL is not set' }, async t => {
  const ann = await signUp('ann')
  const photo = randomBytes(6 << 20)
  const hash = createHash('sha256').update(photo).digest('hex')

  // Offline first: the record reaches the server before its blob, and
  // the server says which blob to send.
  const pushed = await pushAttachment(ann.token, `att-${randomUUID()}`, hash, photo.length)
  assert.deepEqual(pushed.missing_blobs, [`sha256:${hash}`])

  // The connection is killed half way; the client resumes by itself.
  const proxy = await cuttingProxy(url, 3 << 20)
  t.after(proxy.close)
  let progressAfterCut = 0
  await upload(photo, hash, proxy.url, ann.token, {
    onProgress: sent => { if (proxy.wasCut()) progressAfterCut = sent },
  })
  assert.ok(proxy.wasCut(), 'the connection was never cut')
  // The upload resumed instead of starting over (which would send the 3 MiB
  // before the cut again): what crossed the proxy twice is the cut chunk
  // (at most 1 MiB) and, on a loaded machine, what a retry sent before the
  // server answered it with the offset the cut request had reached (the
  // bench measures the resend exactly, on a quiet run).
  const resent = proxy.sent() - photo.length
  assert.ok(resent < 2 * (1 << 20) + 64 * 1024, `resent ${resent} bytes`)

  // A second blob: the device stops half way (abort, as on a restart)
  // and a new Upload resumes from the stored upload URL.
  const video = randomBytes(4 << 20)
  const videoHash = createHash('sha256').update(video).digest('hex')
  let first
  await new Promise((resolve, reject) => {
    first = new tus.Upload(video, {
      endpoint: `${url}/sync/blobs/uploads`,
      headers: { Authorization: `Bearer ${ann.token}` },
      metadata: { sha256: videoHash, filetype: 'video/mp4' },
      chunkSize: 1 << 20,
      onError: reject,
      onChunkComplete: (_, accepted) => { if (accepted >= 2 << 20) { first.abort().then(resolve, reject) } },
      onSuccess: () => reject(new Error('the aborted upload finished')),
    })
    first.start()
  })
  let resumedFrom = -1
  await upload(video, videoHash, url, ann.token, {
    uploadUrl: first.url,
    onProgress: sent => { if (resumedFrom < 0) resumedFrom = sent },
  })
  assert.ok(resumedFrom >= 2 << 20, `resumed from ${resumedFrom}`)
  await pushAttachment(ann.token, `att-${randomUUID()}`, videoHash, video.length)

  // Uploading the photo again is answered at once: nothing is sent.
  let again = 0
  await upload(photo, hash, url, ann.token, { onProgress: sent => { again = sent } })
  assert.ok(again === 0 || again === photo.length, `sent ${again} bytes again`)

  // Another device of ann's pulls the attachments and fetches the blobs.
  const page = await (await fetch(`${url}/sync/pull?models=data.Attachment`, {
    headers: { Authorization: `Bearer ${ann.token}` },
  })).json()
  const refs = page.changes.map(r => r.data.file.$blob).sort()
  assert.deepEqual(refs, [`sha256:${hash}`, `sha256:${videoHash}`].sort())
  for (const [ref, bytes] of [[`sha256:${hash}`, photo], [`sha256:${videoHash}`, video]]) {
    const half = bytes.length / 2
    const head = await fetch(`${url}/sync/blobs/${ref}`, {
      headers: { Authorization: `Bearer ${ann.token}`, Range: `bytes=0-${half - 1}` },
    })
    assert.equal(head.status, 206)
    const tail = await fetch(`${url}/sync/blobs/${ref}`, {
      headers: { Authorization: `Bearer ${ann.token}`, Range: `bytes=${half}-`, 'If-Range': head.headers.get('etag') },
    })
    assert.equal(tail.status, 206)
    const got = Buffer.concat([Buffer.from(await head.arrayBuffer()), Buffer.from(await tail.arrayBuffer())])
    assert.ok(got.equals(bytes), `${ref}: the downloaded bytes differ`)
  }

  // Another user gets nothing for the hash.
  const bob = await signUp('bob')
  const res = await fetch(`${url}/sync/blobs/sha256:${hash}`, { headers: { Authorization: `Bearer ${bob.token}` } })
  assert.equal(res.status, 404)
})
