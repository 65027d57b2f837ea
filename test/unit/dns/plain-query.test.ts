/** dns/plain-query.ts: the common query read without dns2, read as dns2 reads it; anything else left to dns2. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Packet } from 'dns2'
import { questionLabels, readPlainQuery } from '../../../src/dns/plain-query.js'
import { SeededRandom } from '../../../src/util/random.js'

function query (name: string, type: number, options: { id?: number, klass?: number, edns?: number, version?: number, dnssecOk?: boolean } = {}): Buffer {
  const packet = new Packet()
  packet.header.id = options.id ?? 1
  packet.header.rd = 1
  packet.questions.push(new Packet.Question(name, type, options.klass ?? Packet.CLASS.IN))
  if (options.edns !== undefined) {
    const opt = Packet.Resource.EDNS([], { udpPayloadSize: options.edns, version: options.version ?? 0, doFlag: options.dnssecOk === true })
    opt.name = ''
    packet.additionals.push(opt)
  }
  return packet.toBuffer() as Buffer
}

test('200 generated queries read as dns2 reads them: the name (lower case), type, class, OPT size, version and DO bit, where the question ends', () => {
  const random = new SeededRandom(7)
  const alphabet = 'abcXYZ019-_'
  const pick = (count: number): number => Math.floor(random.next() * count)
  for (let round = 0; round < 200; round++) {
    const labels = Array.from({ length: 1 + pick(4) }, () => Array.from({ length: 1 + pick(12) }, () => alphabet[pick(alphabet.length)]).join(''))
    const name = labels.join('.')
    const type = [1, 28, 33, 6, 2, 255, 65][pick(7)] as number
    const edns = random.next() < 0.5 ? undefined : 512 + pick(4000)
    const version = edns !== undefined && random.next() < 0.2 ? 1 : 0
    const bytes = query(name, type, { id: round, klass: random.next() < 0.9 ? 1 : 3, ...(edns === undefined ? {} : { edns, version, dnssecOk: random.next() < 0.5 }) })
    const read = readPlainQuery(bytes)
    const decoded = Packet.parse(bytes)
    const question = decoded.questions[0]
    const opt = decoded.additionals[0]
    assert.deepEqual(read, {
      name: String(question?.name).toLowerCase(),
      type: question?.type,
      class: question?.class,
      questionEnd: 12 + name.length + 2 + 4,
      opt: opt === undefined ? undefined : { udpPayloadSize: opt.class, version: opt.version, isDnssecOk: opt.doFlag }
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

test('questionLabels: labels octet for octet (a dot inside one stays inside), pointers followed, loops and cuts undefined', () => {
  const header = Buffer.from([0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0])
  const typeClass = Buffer.from([0, 1, 0, 1])
  const dotted = Buffer.concat([header, Buffer.from([7]), Buffer.from('a.b.c.d'), Buffer.from([3]), Buffer.from('COM'), Buffer.from([0]), typeClass])
  assert.deepEqual(questionLabels(dotted), { labels: ['a.b.c.d', 'com'], questionEnd: dotted.length })
  // A name that ends in a pointer to the header's own bytes read as a label: 0x0c -> offset 12, itself.
  const loop = Buffer.concat([header, Buffer.from([0xc0, 0x0c]), typeClass])
  assert.equal(questionLabels(loop), undefined, 'a pointer loop')
  assert.equal(questionLabels(dotted.subarray(0, 16)), undefined, 'cut inside a label')
  assert.equal(questionLabels(Buffer.concat([header, Buffer.from([3]), Buffer.from('web'), Buffer.from([0])])), undefined, 'no type and class')
})

test('an OPT whose options are not plain is left to dns2 (which refuses what it cannot read): a cut option header, an option longer than what is left, client subnet, extended error; an extended RCODE with its top bit set too', () => {
  const plain = query('web.srvgate.test', 1, { edns: 1232 })
  const withOptions = (options: Buffer): Buffer => {
    const bytes = Buffer.concat([plain, options])
    bytes.writeUInt16BE(options.length, plain.length - 2)
    return bytes
  }
  assert.deepEqual(readPlainQuery(withOptions(Buffer.from([0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8])))?.opt, { udpPayloadSize: 1232, version: 0, isDnssecOk: false }, 'a cookie is plain')
  for (const [what, options] of [
    ['a cut option header', Buffer.from([0, 8])],
    ['an option longer than what is left', Buffer.from([0, 10, 0, 9, 1])],
    ['client subnet', Buffer.from([0, 8, 0, 4, 0, 1, 24, 0])],
    ['extended error', Buffer.from([0, 15, 0, 2, 0, 0])]
  ] as const) assert.equal(readPlainQuery(withOptions(options)), undefined, what)
  const highRcode = Buffer.from(plain)
  highRcode[plain.length - 6] = 0xc2
  assert.equal(readPlainQuery(highRcode), undefined, 'extended RCODE 0xc2')
})
