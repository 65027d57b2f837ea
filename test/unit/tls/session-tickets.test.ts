/**
 * Session tickets (issue 21 item 5): the control plane's one key, rotated on
 * the ManualClock, and real TLS listeners on loopback that share it, so a
 * ticket one listener (one worker) issued resumes on another, SNI's
 * per-certificate contexts and a certificate reload included.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { connect, type TLSSocket } from 'node:tls'
import type { AddressInfo } from 'node:net'
import type { TlsConfig } from '../../../src/config/types.js'
import { ClientConnections } from '../../../src/edge/client-connections.js'
import { CertificateStore } from '../../../src/tls/certificates.js'
import { TlsListener } from '../../../src/tls/listener.js'
import { SessionTicketKeys, TICKET_KEY_BYTES } from '../../../src/tls/session-tickets.js'
import { ManualClock, systemClock } from '../../../src/util/clock.js'
import { ms } from '../../../src/util/duration.js'
import { TestCa } from '../../helpers/certificates.js'

test('the key: one at start, a new one every rotateEvery (told to onKey), a changed interval counts from now, stop ends it', () => {
  const clock = new ManualClock()
  let made = 0
  const told: number[] = []
  const keys = new SessionTicketKeys({ clock, rotateEveryMs: 60_000, onKey: (key) => { told.push(key[0] ?? -1) }, generate: () => Buffer.alloc(TICKET_KEY_BYTES, ++made) })
  assert.equal(keys.key.length, TICKET_KEY_BYTES)
  assert.equal(keys.key[0], 1)
  clock.advance(59_999)
  assert.deepEqual(told, [])
  clock.advance(1)
  assert.deepEqual(told, [2])
  assert.equal(keys.key[0], 2)
  clock.advance(60_000)
  assert.deepEqual(told, [2, 3])
  // A reload sets 5 minutes, 30 s into the key's life: the next key comes 5 minutes from the reload.
  clock.advance(30_000)
  keys.setRotateEvery(300_000)
  clock.advance(299_999)
  assert.deepEqual(told, [2, 3])
  clock.advance(1)
  assert.deepEqual(told, [2, 3, 4])
  // The same interval again changes nothing.
  clock.advance(100_000)
  keys.setRotateEvery(300_000)
  clock.advance(200_000)
  assert.deepEqual(told, [2, 3, 4, 5])
  keys.stop()
  clock.advance(3_600_000)
  assert.deepEqual(told, [2, 3, 4, 5])
})

test('the default key source makes 48 random bytes, a different key each time', () => {
  const clock = new ManualClock()
  const seen: Buffer[] = []
  const keys = new SessionTicketKeys({ clock, rotateEveryMs: 1000, onKey: (key) => { seen.push(key) } })
  seen.push(keys.key)
  clock.advance(1000)
  clock.advance(1000)
  keys.stop()
  assert.equal(seen.length, 3)
  for (const key of seen) assert.equal(key.length, TICKET_KEY_BYTES)
  assert.equal(new Set(seen.map((key) => key.toString('hex'))).size, 3)
})

type Setup = { ca: TestCa, store: CertificateStore, tls: TlsConfig }

async function setup (t: TestContext, options: { enabled?: boolean, withDefault?: boolean } = {}): Promise<Setup> {
  const ca = TestCa.create(t)
  const issued = ca.issue(['www.example.com'])
  const tls: TlsConfig = {
    certificates: [{ certPath: issued.cert, keyPath: issued.key }],
    defaultName: options.withDefault === true ? 'www.example.com' : undefined,
    minVersion: 'TLSv1.2',
    redirectHttp: false,
    sessionTickets: { enabled: options.enabled ?? true, rotateEveryMs: ms(3_600_000) },
    hsts: undefined,
    acme: undefined
  }
  return { ca, tls, store: await CertificateStore.load(tls, Date.now()) }
}

/** A listener as a data plane makes it (one per worker), on a loopback port of its own. */
async function listener (t: TestContext, { store, tls }: Setup): Promise<{ tls: TlsListener, port: number }> {
  const limits = { headersTimeoutMs: 5000, keepAliveTimeoutMs: 5000, sendTimeoutMs: 5000, maxConcurrentStreams: 100, maxHeaderBytes: 16_384, maxHeaderCount: 100 }
  const made = new TlsListener({
    store,
    tls,
    onRequest: (_request, response) => { response.end('ok') },
    limits: () => limits,
    clock: systemClock,
    connections: new ClientConnections(() => ({ maxConnections: 100, maxConnectionsPerIp: undefined })),
    headTimedOut: (socket) => { socket.destroy() }
  })
  await new Promise<void>((resolve) => { made.listener.listen(0, '127.0.0.1', resolve) })
  t.after(async () => { await made.close() })
  return { tls: made, port: (made.listener.address() as AddressInfo).port }
}

type Handshake = { readonly reused: boolean, readonly session: Buffer | undefined }

/** A TLS connection with SNI www.example.com, offering `session`; whether it resumed, and the ticket it was given. */
async function handshake (port: number, ca: TestCa, maxVersion: 'TLSv1.2' | 'TLSv1.3', session?: Buffer): Promise<Handshake> {
  return await new Promise((resolve, reject) => {
    let reused = false
    let ticket: Buffer | undefined
    const socket: TLSSocket = connect({ host: '127.0.0.1', port, servername: 'www.example.com', ca: readFileSync(ca.caPath), maxVersion, session, ALPNProtocols: ['http/1.1'] })
    socket.on('session', (received: Buffer) => { ticket = received })
    socket.once('secureConnect', () => {
      reused = socket.isSessionReused()
      // TLS 1.3 sends its tickets after the handshake: one request and its answer let them arrive.
      socket.write('GET / HTTP/1.1\r\nHost: www.example.com\r\nConnection: close\r\n\r\n')
    })
    socket.on('data', () => {})
    socket.once('error', reject)
    socket.once('close', () => { resolve({ reused, session: ticket }) })
  })
}

for (const maxVersion of ['TLSv1.3', 'TLSv1.2'] as const) {
  test(`${maxVersion}: a ticket from one listener resumes on another that has the same key (the workers' case), also after a certificate reload; with keys of their own it does not`, async (t) => {
    const s = await setup(t)
    const [a, b, c] = [await listener(t, s), await listener(t, s), await listener(t, s)]
    const key = Buffer.alloc(TICKET_KEY_BYTES, 7)
    a.tls.useTicketKey(key)
    b.tls.useTicketKey(key)
    const first = await handshake(a.port, s.ca, maxVersion)
    assert.equal(first.reused, false)
    assert.ok(first.session !== undefined, 'the listener issued a ticket')
    assert.equal((await handshake(a.port, s.ca, maxVersion, first.session)).reused, true, 'the same listener')
    assert.equal((await handshake(b.port, s.ca, maxVersion, first.session)).reused, true, 'another listener with the same key')
    // c kept Node's own random key: a full handshake. This is what each worker had before.
    assert.equal((await handshake(c.port, s.ca, maxVersion, first.session)).reused, false, 'a listener with a key of its own')
    // A reload's certificates make a new context: the key goes with it.
    b.tls.use(await CertificateStore.load(s.tls, Date.now()))
    assert.equal((await handshake(b.port, s.ca, maxVersion, first.session)).reused, true, 'after use(store)')
    // A rotation: the old ticket gets a full handshake, and a new ticket resumes everywhere again.
    const next = Buffer.alloc(TICKET_KEY_BYTES, 8)
    a.tls.useTicketKey(next)
    b.tls.useTicketKey(next)
    const afterRotation = await handshake(b.port, s.ca, maxVersion, first.session)
    assert.equal(afterRotation.reused, false, 'a ticket of the previous key')
    assert.equal((await handshake(a.port, s.ca, maxVersion, afterRotation.session)).reused, true, 'a ticket of the new key')
  })
}

test('the listener\'s own context (a client without SNI, served the default certificate) resumes with the shared key too', async (t) => {
  const s = await setup(t, { withDefault: true })
  const [a, b] = [await listener(t, s), await listener(t, s)]
  const key = Buffer.alloc(TICKET_KEY_BYTES, 9)
  a.tls.useTicketKey(key)
  b.tls.useTicketKey(key)
  const noSni = async (port: number, session?: Buffer): Promise<Handshake> => await new Promise((resolve, reject) => {
    let reused = false
    let ticket: Buffer | undefined
    const socket = connect({ host: '127.0.0.1', port, ca: readFileSync(s.ca.caPath), checkServerIdentity: () => undefined, session })
    socket.on('session', (received: Buffer) => { ticket = received })
    socket.once('secureConnect', () => {
      reused = socket.isSessionReused()
      socket.write('GET / HTTP/1.1\r\nHost: www.example.com\r\nConnection: close\r\n\r\n')
    })
    socket.on('data', () => {})
    socket.once('error', reject)
    socket.once('close', () => { resolve({ reused, session: ticket }) })
  })
  const first = await noSni(a.port)
  assert.equal((await noSni(b.port, first.session)).reused, true)
})

test('tls.sessionTickets.enabled false: no handshake resumes, not even on the listener that made the session', async (t) => {
  const s = await setup(t, { enabled: false })
  const a = await listener(t, s)
  for (const maxVersion of ['TLSv1.3', 'TLSv1.2'] as const) {
    const first = await handshake(a.port, s.ca, maxVersion)
    // The client still holds a session to offer (a session id, or a stateful TLS 1.3 ticket): no cache of Node's takes it back.
    assert.ok(first.session !== undefined, maxVersion)
    assert.equal((await handshake(a.port, s.ca, maxVersion, first.session)).reused, false, maxVersion)
  }
})
