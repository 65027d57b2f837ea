import type { ServerResponse } from 'node:http'
import { nodeHttp } from '../util/node-http.js'

/**
 * The one reader of Node's private HTTP/1.1 server state. Node's server keeps
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
