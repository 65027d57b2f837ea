import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createSocket } from 'node:dgram'
import { bindUdp } from '../../../src/util/shared-udp-port.js'
import { makeAddress } from '../../../src/util/address.js'

/** One datagram from `socket` to a receiver on 127.0.0.1, addressed as `host`: what arrives, and whether the send's callback ran before send() returned (it must not: dgram's contract). */
async function sendTo (host: string): Promise<{ readonly received: string, readonly isCallbackDeferred: boolean }> {
  const receiver = createSocket('udp4')
  await new Promise<void>((resolve) => { receiver.bind(0, '127.0.0.1', resolve) })
  const sender = await bindUdp(makeAddress('127.0.0.1', 0), false)
  try {
    const received = new Promise<string>((resolve) => { receiver.once('message', (message) => { resolve(message.toString()) }) })
    let hasReturned = false
    const sent = new Promise<boolean>((resolve, reject) => {
      sender.send(Buffer.from(`to ${host}`), receiver.address().port, host, (error) => { if (error === null) resolve(hasReturned); else reject(error) })
    })
    hasReturned = true
    return { received: await received, isCallbackDeferred: await sent }
  } finally {
    sender.close()
    receiver.close()
  }
}

test('the face\'s UDP sockets send to an address literal (the one remembered, and a new one) and to a name, which dns.lookup still resolves', async () => {
  assert.deepEqual(await sendTo('127.0.0.1'), { received: 'to 127.0.0.1', isCallbackDeferred: true })
  assert.deepEqual(await sendTo('127.0.0.1'), { received: 'to 127.0.0.1', isCallbackDeferred: true })
  assert.deepEqual(await sendTo('localhost'), { received: 'to localhost', isCallbackDeferred: true })
})

test('a name that does not resolve fails the send with the lookup\'s error, not a throw', async () => {
  const sender = await bindUdp(makeAddress('127.0.0.1', 0), false)
  try {
    const error = await new Promise<Error | null>((resolve) => { sender.send(Buffer.from('x'), 9, 'no-such-host.invalid', resolve) })
    assert.ok(error instanceof Error)
    assert.match(String((error as NodeJS.ErrnoException).code), /ENOTFOUND|EAI_AGAIN/)
  } finally {
    sender.close()
  }
})
