import type { Server, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { LibraryShapeError } from '../errors.js'
import { nodeHttp } from '../util/node-http.js'

/**
 * The one reader of Node's private HTTP/1.1 server state (and the one place
 * that takes its connection listener, below). Node's server keeps
 * the response a socket is writing in `socket._httpMessage`: set when a
 * request is parsed (and by ServerResponse.assignSocket), cleared once that
 * response has finished. test/unit/edge/node-http-internals.test.ts fails if
 * Node changes that shape.
 *
 * What it saves, for its two readers: (1) proxy/reply-error.ts answers a
 * parse error on a connection whose request is under way (a malformed
 * chunked body) through that request (its id, its one access line): our
 * own mark on the socket would take two writes per request (set at the
 * start, cleared at the end) on every request to serve a rare error, and
 * would be wrong between the response's 'finish' and its 'close'. (2)
 * tls/listener.ts's drain closes idle HTTP/1.1 TLS connections at once and
 * busy ones after their answer: knowing which without it takes a listener
 * per request.
 */
export function responseOnSocket (socket: object): ServerResponse | undefined {
  const message = (socket as { _httpMessage?: unknown })._httpMessage
  return message instanceof nodeHttp.ServerResponse ? message : undefined
}

/**
 * Node's own 'connection' listener of an http.Server (the function that gives
 * a socket its HTTP/1.1 parser, named `connectionListener` since Node 0.x),
 * taken off the server, for a caller that looks at a connection's first bytes
 * before deciding (edge/h2c-listener.ts: HTTP/2 with prior knowledge goes to
 * another server). Node offers no public way to hand a socket to the same
 * server's parser later; emitting 'connection' again would run the caller's
 * own listener again. test/unit/edge/node-http-internals.test.ts fails if
 * Node renames it.
 */
export function takeConnectionListener (server: Server): (socket: Socket) => void {
  const listener = server.listeners('connection').find((candidate) => candidate.name === 'connectionListener')
  if (listener === undefined) throw new LibraryShapeError('node:http', 'no connectionListener on the server')
  server.removeListener('connection', listener as (socket: Socket) => void)
  return (socket) => { Reflect.apply(listener, server, [socket]) }
}
