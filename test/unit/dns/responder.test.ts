import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Packet } from 'dns2'
import { AnswerCache, respond, type FaceInstance, type FaceView } from '../../../src/dns/responder.js'
import { SeededRandom } from '../../../src/util/random.js'

const ZONE = 'srvgate.internal'
const instance = (address: string, port = 80): FaceInstance => ({ address, port, priority: 1, weight: 1 })

function viewOf (instances: readonly FaceInstance[], version: unknown = instances): FaceView {
  return { zone: ZONE, ttlSeconds: 5, target: (label) => label === 'web' ? { kind: 'instances', instances, preferred: instances, isStale: false, version } : undefined, isKnownAddress: () => false }
}

function query (name: string, type: number, id = 1, edns?: number): Buffer {
  const packet = new Packet()
  packet.header.id = id
  packet.header.rd = 1
  packet.questions.push(new Packet.Question(name, type, Packet.CLASS.IN))
  if (edns !== undefined) {
    const opt = Packet.Resource.EDNS([], { udpPayloadSize: edns })
    opt.name = ''
    packet.additionals.push(opt)
  }
  return packet.toBuffer() as Buffer
}

const answerOf = (bytes: Buffer | undefined) => Packet.parse(bytes as Buffer)

test('responder: AAAA and A answers assembled directly decode as dns2 reads them, with the question echoed as asked (0x20 case)', () => {
  const view = viewOf([instance('fd00::1'), instance('::1'), instance('2001:db8::a:b'), instance('10.0.0.1')])
  const six = answerOf(respond(query(`WeB.SrvGate.internal`, Packet.TYPE.AAAA, 77), 'udp', view, new SeededRandom(1)).bytes)
  assert.equal(six.header.id, 77)
  assert.equal(six.header.qr, 1)
  assert.equal(six.header.aa, 1)
  assert.equal(six.header.rd, 1)
  assert.equal(six.header.ra, 0)
  assert.equal(six.questions[0]?.name, 'WeB.SrvGate.internal')
  assert.deepEqual(six.answers.map((record) => (record as { address?: string }).address).sort(), ['2001:db8::a:b', '::1', 'fd00::1'])
  assert.ok(six.answers.every((record) => record.ttl === 5 && record.name === 'WeB.SrvGate.internal'))
  const four = answerOf(respond(query(`web.${ZONE}`, Packet.TYPE.A, 5, 1232), 'udp', view, new SeededRandom(1)).bytes)
  assert.deepEqual(four.answers.map((record) => (record as { address?: string }).address), ['10.0.0.1'])
  assert.equal(four.additionals[0]?.type, Packet.TYPE.EDNS, 'EDNS0 asked, EDNS0 answered')
})

test('responder: a plain A answer holds as many addresses as fit 512 bytes', () => {
  const many = Array.from({ length: 100 }, (_, index) => instance(`10.1.0.${index}`))
  const bytes = respond(query(`web.${ZONE}`, Packet.TYPE.A), 'udp', viewOf(many), new SeededRandom(3)).bytes as Buffer
  assert.ok(bytes.length <= 512 && bytes.length > 512 - 16, `${bytes.length} bytes: full, and within 512`)
  assert.equal(answerOf(bytes).answers.length, Math.floor((512 - 12 - (`web.${ZONE}`.length + 2) - 4) / 16))
})

test('responder: an SRV answer is encoded once per version and reused with each query\'s ID', () => {
  const cache = new AnswerCache()
  const instances = [instance('10.0.0.1', 8080)]
  const first = respond(query(`_web._tcp.${ZONE}`, Packet.TYPE.SRV, 1), 'udp', viewOf(instances, 'v1'), new SeededRandom(1), cache)
  const again = respond(query(`_web._tcp.${ZONE}`, Packet.TYPE.SRV, 2), 'udp', viewOf(instances, 'v1'), new SeededRandom(1), cache)
  assert.equal(answerOf(again.bytes).header.id, 2)
  assert.deepEqual((again.bytes as Buffer).subarray(2), (first.bytes as Buffer).subarray(2), 'the same answer otherwise')
  const moved = respond(query(`_web._tcp.${ZONE}`, Packet.TYPE.SRV, 3), 'udp', viewOf([instance('10.0.0.2', 9090)], 'v2'), new SeededRandom(1), cache)
  assert.deepEqual(answerOf(moved.bytes).answers.map((record) => (record as { port?: number }).port), [9090], 'a new version is answered anew')
})
