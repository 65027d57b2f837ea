import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Packet } from 'dns2'
import { checkAnswer, mayBeSilentlyTruncated } from '../../../src/dns/transport.js'
import type { Question } from '../../../src/dns/types.js'

const QUESTION: Question = { name: '_web._prod.service.consul', type: 'SRV' }
const ID = 4242

function answer (edit: (packet: InstanceType<typeof Packet>) => void = () => {}): Buffer {
  const packet = new Packet()
  packet.header.id = ID
  packet.header.qr = 1
  packet.questions.push(new Packet.Question(QUESTION.name, Packet.TYPE.SRV, Packet.CLASS.IN))
  for (let index = 0; index < 3; index++) {
    packet.answers.push({ name: QUESTION.name, type: Packet.TYPE.SRV, class: Packet.CLASS.IN, ttl: 0, priority: 1, weight: 1, port: 8000 + index, target: `n${index}.node.dc1.consul` } as never)
    packet.additionals.push({ name: `n${index}.node.dc1.consul`, type: Packet.TYPE.A, class: Packet.CLASS.IN, ttl: 0, address: `10.0.0.${index}` } as never)
  }
  edit(packet)
  return packet.toBuffer()
}

test('an answer to our question is believed', () => {
  const verdict = checkAnswer(answer(), { id: ID, question: QUESTION })
  assert.ok('packet' in verdict)
  assert.equal(verdict.packet.answers.length, 3)
})

test('the question matches case-insensitively and with a root dot (RFC 4343)', () => {
  const verdict = checkAnswer(answer((packet) => { (packet.questions[0] as { name: string }).name = '_WEB._prod.Service.consul.' }), { id: ID, question: QUESTION })
  assert.ok('packet' in verdict)
})

const REJECTIONS: Array<[string, () => Buffer, string]> = [
  ['spoofed ID', () => answer((packet) => { packet.header.id = ID + 1 }), 'id-mismatch'],
  ['QR=0 (a query, not an answer)', () => answer((packet) => { packet.header.qr = 0 }), 'not-a-response'],
  ['wrong question name', () => answer((packet) => { (packet.questions[0] as { name: string }).name = '_web._staging.service.consul' }), 'question-mismatch'],
  ['wrong question type', () => answer((packet) => { (packet.questions[0] as { type: number }).type = Packet.TYPE.A }), 'question-mismatch'],
  ['wrong question class', () => answer((packet) => { (packet.questions[0] as { class: number }).class = Packet.CLASS.CH }), 'question-mismatch'],
  ['no question', () => answer((packet) => { packet.questions = [] }), 'question-mismatch'],
  ['two questions', () => answer((packet) => { packet.questions.push(packet.questions[0] as never) }), 'question-mismatch'],
  ['opcode other than QUERY', () => answer((packet) => { packet.header.opcode = 2 }), 'bad-opcode'],
  ['packet cut short', () => answer().subarray(0, 90), 'truncated-packet'],
  ['garbage bytes', () => Buffer.from('this is not a DNS message at all, just bytes'), 'not-a-response'],
  ['garbage after a header that matches', () => Buffer.concat([answer().subarray(0, 12), Buffer.from('garbage garbage garbage')]), 'question-mismatch'],
  ['fewer bytes than a header', () => Buffer.from([1, 2, 3]), 'malformed'],
  ['empty datagram', () => Buffer.alloc(0), 'malformed']
]

for (const [name, bytes, reason] of REJECTIONS) {
  test(`rejected: ${name}`, () => {
    const verdict = checkAnswer(bytes(), { id: ID, question: QUESTION })
    assert.ok('rejected' in verdict, 'the answer was believed')
    assert.equal(verdict.rejected, reason)
    assert.ok(verdict.detail.length > 0)
  })
}

test('random bytes never throw out of checkAnswer', () => {
  let state = 7
  const next = (): number => { state = (state * 1103515245 + 12345) & 0x7fffffff; return state }
  for (let round = 0; round < 2000; round++) {
    const bytes = Buffer.from(Array.from({ length: next() % 300 }, () => next() & 0xff))
    if (bytes.length >= 2) bytes.writeUInt16BE(ID, 0)
    if (bytes.length >= 3) bytes[2] = (bytes[2] as number) | 0x80
    const verdict = checkAnswer(bytes, { id: ID, question: QUESTION })
    assert.ok('rejected' in verdict || 'packet' in verdict)
  }
})

function decoded (bytes: Buffer): InstanceType<typeof Packet> {
  return Packet.parse(bytes)
}

function withAnswers (count: number, withOpt: boolean): Buffer {
  return answer((packet) => {
    packet.answers = []
    packet.additionals = []
    for (let index = 0; index < count; index++) {
      packet.answers.push({ name: QUESTION.name, type: Packet.TYPE.SRV, class: Packet.CLASS.IN, ttl: 0, priority: 1, weight: 1, port: 8000 + index, target: `n${index}.node.dc1.consul` } as never)
      packet.additionals.push({ name: `n${index}.node.dc1.consul`, type: Packet.TYPE.A, class: Packet.CLASS.IN, ttl: 0, address: `10.0.${index >> 8}.${index & 255}` } as never)
    }
    if (withOpt) {
      const opt = Packet.Resource.EDNS([], { udpPayloadSize: 4096 })
      opt.name = ''
      packet.additionals.push(opt)
    }
  })
}

test('silent truncation: an answer with room for more is complete', () => {
  const bytes = withAnswers(10, true)
  assert.equal(mayBeSilentlyTruncated(bytes.length, decoded(bytes), 4096), false)
})

test('silent truncation: an answer filling the advertised size may have been cut', () => {
  // What Consul sends when it cut an answer to a 1232-byte payload: no TC bit.
  let count = 1
  while (withAnswers(count + 1, true).length <= 1232) count++
  const bytes = withAnswers(count, true)
  assert.equal(mayBeSilentlyTruncated(bytes.length, decoded(bytes), 1232), true)
  const small = withAnswers(Math.floor(count / 3), true)
  assert.equal(mayBeSilentlyTruncated(small.length, decoded(small), 1232), false)
})

test('silent truncation: without OPT in the answer, 3 answers is Consul\'s plain-UDP limit', () => {
  const three = withAnswers(3, false)
  assert.equal(mayBeSilentlyTruncated(three.length, decoded(three), 4096), true)
  const two = withAnswers(2, false)
  assert.equal(mayBeSilentlyTruncated(two.length, decoded(two), 4096), false)
})

test('silent truncation: an empty answer is never cut', () => {
  const none = withAnswers(0, true)
  assert.equal(mayBeSilentlyTruncated(none.length, decoded(none), 512), false)
})
