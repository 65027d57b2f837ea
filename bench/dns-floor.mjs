/**
 * The floor under the DNS face: a bare node:dgram socket that answers each
 * query with its own bytes, QR set (no decoding, no lookup, no record
 * written): one receive and one send a query, what any Node UDP server pays.
 * `node bench/dns-floor.mjs PORT` binds with SO_REUSEPORT, so several of them
 * share the port as the face's workers do (the kernel spreads the queries).
 */
import { createSocket } from 'node:dgram'

const port = Number(process.argv[2])
const socket = createSocket({ type: 'udp4', reusePort: true })
// One callback for every send, as the face has (dgram drops a send's error without one).
const sent = () => {}
socket.on('message', (query, from) => {
  if (query.length < 12) return
  const answer = Buffer.from(query)
  answer[2] |= 0x80
  socket.send(answer, from.port, from.address, sent)
})
socket.bind(port, '127.0.0.1', () => { process.send?.('listening') })
process.on('SIGTERM', () => { socket.close(); process.exit(0) })
