/** dns/plain-query.ts: the common query read without dns2, read as dns2 reads it; anything else left to dns2. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Packet } from 'dns2'
import { readPlainQuery } from '../../../src/dns/plain-query.js'
import { SeededRandom } from '../../../src/util/random.js'

function query (name: string, type: number, options: { id?: number, klass?: number, edns?: number, version?: number } = {}): Buffer {
  const packet = new Packet()
  packet.header.id = options.id ?? 1
  packet.header.rd = 1
  packet.questions.push(new Packet.Question(name, type, options.klass ?? Packet.CLASS.IN))
  if (options.edns !== undefined) {
    const opt = Packet.Resource.EDNS([], { udpPayloadSize: options.edns, version: options.version ?? 0 })
    opt.name = ''
    packet.additionals.push(opt)
  }
  return packet.toBuffer() as Buffer
}

test('200 generated queries read as dns2 reads them: the name (lower case), type, class, OPT size and version, where the question ends', () => {
  const random = new SeededRandom(7)
  const alphabet = 'abcXYZ019-_'
  const pick = (count: number): number => Math.floor(random.next() * count)
  for (let round = 0; round < 200; round++) {
    const labels = Array.from({ length: 1 + pick(4) }, () => Array.from({ length: 1 + pick(12) }, () => alphabet[pick(alphabet.length)]).join(''))
    const name = labels.join('.')
    const type = [1, 28, 33, 6, 2, 255, 65][pick(7)] as number
    const edns = random.next() < 0.5 ? undefined : 512 + pick(4000)
    const version = edns !== undefined && random.next() < 0.2 ? 1 : 0
    const bytes = query(name, type, { id: round, klass: random.next() < 0.9 ? 1 : 3, ...(edns === undefined ? {} : { edns, version }) })
    const read = readPlainQuery(bytes)
    const decoded = Packet.parse(bytes)
    const question = decoded.questions[0]
    const opt = decoded.additionals[0]
    assert.deepEqual(read, {
      name: String(question?.name).toLowerCase(),
      type: question?.type,
      class: question?.class,
      questionEnd: 12 + name.length + 2 + 4,
      opt: opt === undefined ? undefined : { udpPayloadSize: opt.class, version: opt.version }
    }, `query ${round}: ${name}`)
  }
})

test('anything but the plain shape is left to dns2: a response, another opcode, two questions, an answer record, trailing bytes, a pointer, a label with other octets, two additionals, an additional that is not an OPT', () => {
  const plain = query('web.srvgate.test', 1, { edns: 1232 })
  assert.notEqual(readPlainQuery(plain), undefined)
  const changed = (edit: (bytes: Buffer) => Buffer): Buffer => edit(Buffer.from(plain))
  const cases: Array<[string, Buffer]> = [
    ['a response', changed((bytes) => { bytes[2] = (bytes[2] as number) | 0x80; return bytes })],
    ['opcode NOTIFY', changed((bytes) => { bytes[2] = ((bytes[2] as number) & 0x87) | (4 << 3); return bytes })],
    ['two questions', changed((bytes) => { bytes.writeUInt16BE(2, 4); return bytes })],
    ['an answer record', changed((bytes) => { bytes.writeUInt16BE(1, 6); return bytes })],
    ['trailing bytes', Buffer.concat([plain, Buffer.from([0])])],
    ['two additionals', changed((bytes) => { bytes.writeUInt16BE(2, 10); return bytes })],
    ['cut short', plain.subarray(0, plain.length - 3)],
    ['a pointer for the name', Buffer.concat([plain.subarray(0, 12), Buffer.from([0xc0, 0x0c, 0, 1, 0, 1])])],
    ['a label with other octets (a backslash)', query('we\\.b.srvgate.test', 1)],
    ['an additional that is not an OPT', changed((bytes) => { bytes.writeUInt16BE(1, bytes.length - 10); return bytes })]
  ]
  for (const [what, bytes] of cases) assert.equal(readPlainQuery(bytes), undefined, what)
})
