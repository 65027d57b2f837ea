import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Packet } from 'dns2'
import { AnswerCache, respond, STALE_TTL_SECONDS, type FaceInstance, type FaceView } from '../../../src/dns/responder.js'
import { SeededRandom } from '../../../src/util/random.js'

const ZONE = 'srvgate.internal'
const NAMESERVER = { name: `ns.${ZONE}`, addresses: ['127.0.0.1', '::1'] }
const instance = (address: string, port = 80): FaceInstance => ({ address, port, priority: 1, weight: 1 })

function viewOf (instances: readonly FaceInstance[], version: unknown = instances): FaceView {
  return { zone: ZONE, nameserver: NAMESERVER, ttlSeconds: 5, target: (label) => label === 'web' ? { kind: 'instances', instances, preferred: instances, isStale: false, version } : undefined, isKnownAddress: () => false }
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

/** A query's header with the question's bytes (or none) after it: a message dns2 would not write. */
function rawQuery (id: number, flags: number, counts: readonly [number, number, number, number], body: Buffer = Buffer.alloc(0)): Buffer {
  const header = Buffer.alloc(12)
  header.writeUInt16BE(id, 0)
  header.writeUInt16BE(flags, 2)
  counts.forEach((count, index) => { header.writeUInt16BE(count, 4 + index * 2) })
  return Buffer.concat([header, body])
}

const staleView = (instances: readonly FaceInstance[]): FaceView => ({
  zone: ZONE, nameserver: NAMESERVER, ttlSeconds: 5, target: (label) => label === 'web' ? { kind: 'instances', instances, preferred: instances, isStale: true, version: instances } : undefined, isKnownAddress: () => false
})

test('responder: nothing is answered to a message too short for a header, or to a response', () => {
  const random = new SeededRandom(1)
  const short = respond(Buffer.from([0, 1, 1, 0, 0, 1]), 'udp', viewOf([]), random)
  assert.deepEqual([short.bytes, short.rcode], [undefined, 'dropped'])
  const response = query(`web.${ZONE}`, Packet.TYPE.A, 9)
  response[2] = (response[2] as number) | 0x80
  const echoed = respond(response, 'udp', viewOf([instance('10.0.0.1')]), random)
  assert.deepEqual([echoed.bytes, echoed.rcode], [undefined, 'dropped'], 'answering a response makes loops')
})

test('responder: FORMERR, header only with the ID, opcode and RD echoed, for a question or record that cannot be read, two questions, an answer in a query or two OPTs', () => {
  const random = new SeededRandom(1)
  const view = viewOf([instance('10.0.0.1')])
  const cut = rawQuery(41, 0x0100, [1, 0, 0, 0], Buffer.from([3, 0x77, 0x65]))
  const two = query(`web.${ZONE}`, Packet.TYPE.A, 42)
  two.writeUInt16BE(2, 4)
  const twice = Buffer.concat([two, query(`web.${ZONE}`, Packet.TYPE.A).subarray(12)])
  const withAnswer = Buffer.from(query(`web.${ZONE}`, Packet.TYPE.A, 43))
  withAnswer.writeUInt16BE(1, 6)
  const withAnswerRecord = Buffer.concat([withAnswer, Buffer.from([0, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 10, 0, 0, 1])])
  const twoOpts = (() => {
    const packet = Packet.parse(query(`web.${ZONE}`, Packet.TYPE.A, 44, 1232))
    const opt = Packet.Resource.EDNS([], { udpPayloadSize: 1232 })
    opt.name = ''
    packet.additionals.push(opt)
    return packet.toBuffer() as Buffer
  })()
  // A readable question, then an additional record cut short.
  const brokenAdditional = Buffer.from(query(`web.${ZONE}`, Packet.TYPE.A, 45))
  brokenAdditional.writeUInt16BE(1, 10)
  const withBrokenAdditional = Buffer.concat([brokenAdditional, Buffer.from([0, 0, 41, 2])])
  for (const [bytes, id] of [[cut, 41], [twice, 42], [withAnswerRecord, 43], [twoOpts, 44], [withBrokenAdditional, 45]] as const) {
    const outcome = respond(bytes, 'udp', view, random)
    assert.equal(outcome.rcode, 'formerr', `query ${id}`)
    const answer = outcome.bytes as Buffer
    assert.equal(answer.length, 12, `query ${id}: the header alone`)
    assert.equal(answer.readUInt16BE(0), id)
    assert.equal((answer[2] as number) >> 7, 1, 'QR')
    assert.equal((answer[2] as number) & 0x01, 1, 'RD echoed')
    assert.equal((answer[3] as number) & 0x0f, Packet.RCODE.FORMERR)
    assert.equal(answer.readUInt16BE(4), 0, 'no question echoed')
  }
})

test('responder: NOTIMP for an opcode other than QUERY, with the question echoed', () => {
  const notify = query(`web.${ZONE}`, Packet.TYPE.SOA, 51)
  notify[2] = ((notify[2] as number) & 0x87) | (4 << 3)
  const outcome = respond(notify, 'udp', viewOf([instance('10.0.0.1')]), new SeededRandom(1))
  assert.equal(outcome.rcode, 'notimp')
  const answer = answerOf(outcome.bytes)
  assert.deepEqual([answer.header.id, answer.header.qr, answer.header.rcode, answer.answers.length], [51, 1, Packet.RCODE.NOTIMP, 0])
  assert.equal(answer.questions[0]?.name, `web.${ZONE}`)
})

test('responder: REFUSED for a name outside the zone and for a class other than IN or ANY; ANY is answered as IN', () => {
  const random = new SeededRandom(1)
  const view = viewOf([instance('10.0.0.1')])
  const outside = respond(query('web.example.com', Packet.TYPE.A, 61), 'udp', view, random)
  assert.deepEqual([outside.rcode, outside.name, answerOf(outside.bytes).header.rcode], ['refused', '(outside)', Packet.RCODE.REFUSED])
  // A name that merely ends like the zone is outside it.
  assert.equal(respond(query(`web.not${ZONE}`, Packet.TYPE.A, 62), 'udp', view, random).rcode, 'refused')
  const chaos = new Packet()
  chaos.header.id = 63
  chaos.questions.push(new Packet.Question(`web.${ZONE}`, Packet.TYPE.A, Packet.CLASS.CH))
  const outcome = respond(chaos.toBuffer() as Buffer, 'udp', view, random)
  assert.deepEqual([outcome.rcode, answerOf(outcome.bytes).header.rcode, answerOf(outcome.bytes).answers.length], ['refused', Packet.RCODE.REFUSED, 0])
  const any = new Packet()
  any.questions.push(new Packet.Question(`web.${ZONE}`, Packet.TYPE.A, Packet.CLASS.ANY))
  assert.equal(respond(any.toBuffer() as Buffer, 'udp', view, random).rcode, 'noerror')
})

test('responder: NXDOMAIN with the zone\'s SOA for a label not configured, a deeper name, and an address no name answers with', () => {
  const random = new SeededRandom(1)
  const view: FaceView = { ...viewOf([instance('10.0.0.7')]), isKnownAddress: (address) => address === '10.0.0.7' }
  for (const name of [`nope.${ZONE}`, `a.b.web.${ZONE}`, `_nope._tcp.${ZONE}`, `10-0-0-8.addr.${ZONE}`, `not-an-address.addr.${ZONE}`]) {
    const outcome = respond(query(name, Packet.TYPE.A, 71), 'udp', view, random)
    assert.deepEqual([outcome.rcode, outcome.name], ['nxdomain', '(unknown)'], name)
    const answer = answerOf(outcome.bytes)
    assert.equal(answer.header.rcode, Packet.RCODE.NXDOMAIN, name)
    assert.equal(answer.header.aa, 1)
    assert.deepEqual(answer.authorities.map((record) => [record.type, record.name, record.ttl]), [[Packet.TYPE.SOA, ZONE, 5]], `${name}: SOA for negative caching`)
  }
  const known = respond(query(`10-0-0-7.addr.${ZONE}`, Packet.TYPE.A, 72), 'udp', view, random)
  assert.deepEqual([known.rcode, answerOf(known.bytes).answers.map((record) => record.address)], ['noerror', ['10.0.0.7']])
  // A configured name with nothing for this type is NOERROR, never NXDOMAIN (it will come back).
  const empty = respond(query(`web.${ZONE}`, Packet.TYPE.TXT, 73), 'udp', view, random)
  assert.deepEqual([empty.rcode, answerOf(empty.bytes).answers.length, answerOf(empty.bytes).authorities[0]?.type], ['noerror', 0, Packet.TYPE.SOA])
})

test('responder: the zone\'s NS is the face\'s own name, with its addresses in the additional section; that name answers A and AAAA; the SOA names it', () => {
  const random = new SeededRandom(1)
  const view = viewOf([instance('10.0.0.7')])
  const ns = respond(query(ZONE, Packet.TYPE.NS, 91, 1232), 'udp', view, random)
  const answer = answerOf(ns.bytes)
  assert.deepEqual([ns.rcode, ns.name, answer.header.aa], ['noerror', '(zone)', 1])
  assert.deepEqual(answer.answers.map((record) => [record.type, record.name, record.ns, record.ttl]), [[Packet.TYPE.NS, ZONE, `ns.${ZONE}`, 5]])
  assert.deepEqual(answer.additionals.map((record) => [record.type, record.name, record.address]), [[Packet.TYPE.A, `ns.${ZONE}`, '127.0.0.1'], [Packet.TYPE.AAAA, `ns.${ZONE}`, '::1'], [Packet.TYPE.EDNS, '', undefined]], 'glue, then the OPT')
  const any = answerOf(respond(query(ZONE, Packet.TYPE.ANY, 92), 'udp', view, random).bytes)
  assert.deepEqual(any.answers.map((record) => record.type), [Packet.TYPE.SOA, Packet.TYPE.NS])
  assert.equal(answerOf(respond(query(ZONE, Packet.TYPE.SOA, 93), 'udp', view, random).bytes).answers[0]?.primary, `ns.${ZONE}`)
  const a = respond(query(`NS.${ZONE}`, Packet.TYPE.A, 94), 'udp', view, random)
  assert.deepEqual([a.rcode, a.name, answerOf(a.bytes).answers.map((record) => record.address)], ['noerror', '(nameserver)', ['127.0.0.1']])
  assert.deepEqual(answerOf(respond(query(`ns.${ZONE}`, Packet.TYPE.AAAA, 95), 'udp', view, random).bytes).answers.map((record) => record.address), ['::1'])
  const onlyV4 = { ...view, nameserver: { name: `ns.${ZONE}`, addresses: ['127.0.0.1'] } }
  const none = answerOf(respond(query(`ns.${ZONE}`, Packet.TYPE.AAAA, 96), 'udp', onlyV4, random).bytes)
  assert.deepEqual([none.header.rcode, none.answers.length, none.authorities[0]?.type], [Packet.RCODE.NOERROR, 0, Packet.TYPE.SOA], 'no address of that family: NODATA')
  const mx = answerOf(respond(query(ZONE, Packet.TYPE.MX, 97), 'udp', view, random).bytes)
  assert.deepEqual([mx.answers.length, mx.authorities[0]?.type], [0, Packet.TYPE.SOA])
})

test('responder: an SRV answer that does not fit 512 bytes is cut whole records at a time with TC set and no additionals; over TCP it is whole', () => {
  const many = Array.from({ length: 40 }, (_, index) => instance(`10.2.0.${index}`, 8000 + index))
  const random = new SeededRandom(1)
  const udp = respond(query(`_web._tcp.${ZONE}`, Packet.TYPE.SRV, 81), 'udp', viewOf(many), random)
  assert.equal(udp.isTruncated, true)
  const bytes = udp.bytes as Buffer
  assert.ok(bytes.length <= 512, `${bytes.length} bytes`)
  const cut = answerOf(bytes)
  assert.equal(cut.header.tc, 1)
  assert.ok(cut.answers.length > 0 && cut.answers.length < many.length, `${cut.answers.length} of ${many.length} SRV records`)
  assert.deepEqual(cut.answers.map((record) => record.port), many.slice(0, cut.answers.length).map((one) => one.port), 'the first ones, whole')
  assert.equal(cut.additionals.length, 0)
  const larger = respond(query(`_web._tcp.${ZONE}`, Packet.TYPE.SRV, 82, 4096), 'udp', viewOf(many.slice(0, 12)), random)
  assert.equal(larger.isTruncated, false, 'EDNS0: twelve fit 1232 octets')
  const tcp = respond(query(`_web._tcp.${ZONE}`, Packet.TYPE.SRV, 83), 'tcp', viewOf(many), random)
  const whole = answerOf(tcp.bytes)
  assert.deepEqual([tcp.isTruncated, whole.header.tc, whole.answers.length, whole.additionals.length], [false, 0, 40, 40])
  const few = respond(query(`_web._tcp.${ZONE}`, Packet.TYPE.SRV, 84), 'udp', viewOf(many.slice(0, 3)), random)
  assert.deepEqual([few.isTruncated, answerOf(few.bytes).header.tc, answerOf(few.bytes).additionals.length], [false, 0, 3])
})

test('responder: answers from stale data carry the stale TTL (RFC 8767), in A and SRV answers alike; fresh ones the configured TTL', () => {
  const instances = [instance('10.0.0.1', 8080)]
  const random = new SeededRandom(1)
  const a = respond(query(`web.${ZONE}`, Packet.TYPE.A), 'udp', staleView(instances), random)
  assert.equal(a.isStale, true)
  assert.deepEqual(answerOf(a.bytes).answers.map((record) => record.ttl), [STALE_TTL_SECONDS])
  const srv = respond(query(`_web._tcp.${ZONE}`, Packet.TYPE.SRV), 'udp', staleView(instances), random)
  assert.equal(srv.isStale, true)
  const answer = answerOf(srv.bytes)
  assert.deepEqual([...answer.answers, ...answer.additionals].map((record) => record.ttl), [STALE_TTL_SECONDS, STALE_TTL_SECONDS])
  const fresh = respond(query(`_web._tcp.${ZONE}`, Packet.TYPE.SRV), 'udp', viewOf(instances), random)
  assert.deepEqual([fresh.isStale, answerOf(fresh.bytes).answers[0]?.ttl], [false, 5])
})

test('responder: BADVERS for an EDNS version other than 0 (RFC 6891 §6.1.3): the question echoed, no answer, an OPT of version 0 carrying the extended RCODE', () => {
  const bytes = Buffer.from(query(`web.${ZONE}`, Packet.TYPE.A, 61, 1232))
  // The OPT record is last, 11 bytes (root, type, class, TTL, RDLENGTH 0): the TTL field's second byte is the version.
  bytes[bytes.length - 5] = 1
  assert.equal(Packet.parse(bytes).additionals[0]?.version, 1, 'the query asks EDNS version 1')
  const outcome = respond(bytes, 'udp', viewOf([instance('10.0.0.1')]), new SeededRandom(1))
  assert.equal(outcome.rcode, 'badvers')
  const answer = answerOf(outcome.bytes)
  assert.equal(answer.header.id, 61)
  assert.equal(((outcome.bytes as Buffer)[3] as number) & 0x0f, 0, 'the header holds BADVERS\'s low four bits: 0')
  assert.equal(answer.header.rcode, 16, 'read whole (header and OPT together): BADVERS')
  assert.equal(answer.answers.length, 0)
  assert.equal(answer.questions[0]?.name, `web.${ZONE}`)
  const opt = answer.additionals[0]
  assert.deepEqual([opt?.type, opt?.extendedRcode, opt?.version], [41, 1, 0], 'extended RCODE 1 (16 >> 4), version 0')
  // Version 0 is answered as before.
  assert.equal(respond(query(`web.${ZONE}`, Packet.TYPE.A, 62, 1232), 'udp', viewOf([instance('10.0.0.1')]), new SeededRandom(1)).rcode, 'noerror')
})

test('responder: a label holding a dot is one label (RFC 1035 §3.1), not two: NXDOMAIN in the zone, REFUSED outside it, the question echoed byte for byte', () => {
  const view = viewOf([instance('10.0.0.1')])
  const raw = (labels: readonly string[], type: number): Buffer => Buffer.concat([
    rawQuery(71, 0x0100, [1, 0, 0, 0]),
    ...labels.map((label) => Buffer.concat([Buffer.from([label.length]), Buffer.from(label, 'latin1')])),
    Buffer.from([0, type >> 8, type & 0xff, 0, 1])
  ])
  for (const [labels, rcode, isAuthoritative] of [
    [['web.srvgate', 'internal'], 'refused', false],
    [['web.srvgate.internal'], 'refused', false],
    [['web', 'srvgate.internal'], 'refused', false],
    [['a.b', 'srvgate', 'internal'], 'nxdomain', true],
    [['_web._tcp', 'srvgate', 'internal'], 'nxdomain', true]
  ] as const) {
    const query = raw(labels, Packet.TYPE.A)
    const outcome = respond(query, 'udp', view, new SeededRandom(1))
    assert.equal(outcome.rcode, rcode, labels.join(' | '))
    const answer = outcome.bytes as Buffer
    assert.deepEqual(answer.subarray(12), query.subarray(12), 'the question as it came')
    assert.equal(answer.readUInt16BE(6), 0, 'no answer records')
    assert.equal(((answer[2] as number) & 0x04) !== 0, isAuthoritative)
    assert.equal((answer[3] as number) & 0x0f, rcode === 'refused' ? Packet.RCODE.REFUSED : Packet.RCODE.NXDOMAIN)
  }
})

test('responder: the empty non-terminals above SRV and address names (_tcp.ZONE, addr.ZONE) exist: NOERROR with no answer and the SOA (RFC 8020), not NXDOMAIN', () => {
  const view = viewOf([instance('10.0.0.1')])
  for (const name of [`_tcp.${ZONE}`, `addr.${ZONE}`]) {
    const outcome = respond(query(name, Packet.TYPE.A), 'udp', view, new SeededRandom(1))
    assert.equal(outcome.rcode, 'noerror', name)
    const answer = answerOf(outcome.bytes)
    assert.deepEqual([answer.answers.length, answer.authorities[0]?.type], [0, Packet.TYPE.SOA], name)
  }
  assert.equal(respond(query(`_udp.${ZONE}`, Packet.TYPE.A), 'udp', view, new SeededRandom(1)).rcode, 'nxdomain', 'other names stay NXDOMAIN')
})

test('responder: the DO bit of a query is copied into the answer\'s OPT (RFC 3225 §3), for A answers written directly and SRV answers cached, and not set when the query had none', () => {
  const view = viewOf([instance('10.0.0.1'), instance('10.0.0.2')])
  const cache = new AnswerCache()
  const withDo = (name: string, type: number, id: number, isDnssecOk: boolean): Buffer => {
    const packet = Packet.parse(query(name, type, id, 1232))
    const opt = Packet.Resource.EDNS([], { udpPayloadSize: 1232, doFlag: isDnssecOk })
    opt.name = ''
    packet.additionals = [opt]
    return packet.toBuffer() as Buffer
  }
  for (const [name, type] of [[`web.${ZONE}`, Packet.TYPE.A], [`_web._tcp.${ZONE}`, Packet.TYPE.SRV]] as const) {
    for (const isDnssecOk of [true, false, true]) {
      const answer = answerOf(respond(withDo(name, type, 81, isDnssecOk), 'udp', view, new SeededRandom(1), cache).bytes)
      const opt = answer.additionals.find((record) => record.type === Packet.TYPE.EDNS)
      assert.equal(opt?.doFlag, isDnssecOk, `${name}, DO ${String(isDnssecOk)}`)
    }
  }
})

test('responder: an OPT whose options dns2 cannot read is FORMERR, as before the plain reader (it leaves them to dns2)', () => {
  const plain = query(`web.${ZONE}`, Packet.TYPE.A, 91, 1232)
  const cut = Buffer.concat([plain, Buffer.from([0, 8])])
  cut.writeUInt16BE(2, plain.length - 2)
  assert.equal(respond(cut, 'udp', viewOf([instance('10.0.0.1')]), new SeededRandom(1)).rcode, 'formerr')
})

test('responder: ANY at a configured name answers its addresses (RFC 8482: a subset), IPv6 for a name with none of IPv4; AXFR and IXFR are REFUSED (no transfers)', () => {
  const four = answerOf(respond(query(`web.${ZONE}`, Packet.TYPE.ANY), 'udp', viewOf([instance('10.0.0.1'), instance('fd00::1')]), new SeededRandom(1)).bytes)
  assert.deepEqual(four.answers.map((record) => [record.type, record.address]), [[Packet.TYPE.A, '10.0.0.1']])
  const six = answerOf(respond(query(`web.${ZONE}`, Packet.TYPE.ANY), 'udp', viewOf([instance('fd00::1')]), new SeededRandom(1)).bytes)
  assert.deepEqual(six.answers.map((record) => record.type), [Packet.TYPE.AAAA])
  for (const type of [252, 251]) assert.equal(respond(query(ZONE, type), 'tcp', viewOf([instance('10.0.0.1')]), new SeededRandom(1)).rcode, 'refused', `type ${type}`)
})

test('responder: octets after the last record, or an OPT owned by another name than the root, are FORMERR (as BIND answers); a whole query beside them is answered', () => {
  const view = viewOf([instance('10.0.0.1')])
  const random = new SeededRandom(1)
  const trailing = Buffer.concat([query(`web.${ZONE}`, Packet.TYPE.A, 92), Buffer.from([0xde, 0xad])])
  const trailingAfterOpt = Buffer.concat([query(`web.${ZONE}`, Packet.TYPE.A, 93, 1232), Buffer.from([0])])
  const owned = (() => {
    const packet = Packet.parse(query(`web.${ZONE}`, Packet.TYPE.A, 94))
    const opt = Packet.Resource.EDNS([], { udpPayloadSize: 1232 })
    opt.name = 'web'
    packet.additionals.push(opt)
    return packet.toBuffer() as Buffer
  })()
  for (const [bytes, id] of [[trailing, 92], [trailingAfterOpt, 93], [owned, 94]] as const) {
    const outcome = respond(bytes, 'udp', view, random)
    assert.equal(outcome.rcode, 'formerr', `query ${id}`)
    assert.equal((outcome.bytes as Buffer).readUInt16BE(0), id)
  }
  for (const whole of [query(`web.${ZONE}`, Packet.TYPE.A, 95), query(`web.${ZONE}`, Packet.TYPE.A, 96, 1232), query(`_web._tcp.${ZONE}`, Packet.TYPE.SRV, 97, 1232)]) {
    assert.equal(respond(whole, 'udp', view, random).rcode, 'noerror')
  }
})

test('responder: the OPT advertises 1232 octets (DNS flag day 2020, as BIND 9.18), and a UDP answer never exceeds it whatever the client advertises', () => {
  const many = Array.from({ length: 40 }, (_, index) => instance(`10.2.0.${index}`, 8000 + index))
  const random = new SeededRandom(1)
  for (const type of [Packet.TYPE.A, Packet.TYPE.SRV]) {
    const outcome = respond(query(type === Packet.TYPE.A ? `web.${ZONE}` : `_web._tcp.${ZONE}`, type, 98, 65535), 'udp', viewOf(many), random)
    const bytes = outcome.bytes as Buffer
    assert.ok(bytes.length <= 1232, `${bytes.length} octets`)
    const opt = answerOf(bytes).additionals.find((record) => record.type === Packet.TYPE.EDNS)
    assert.equal(opt?.class, 1232, `type ${type}`)
  }
})
