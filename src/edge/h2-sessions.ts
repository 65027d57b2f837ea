import { constants, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2'
import type { ConnectionTimer } from './connection-timer.js'

/** HTTP/2 streams reset for client.sendTimeout: their access-log line says CLIENT_TIMEOUT, not a client that left. */
const CUT_FOR_SEND_TIMEOUT = new WeakSet<ServerHttp2Stream>()

/** Whether a listener reset this HTTP/2 stream because its client took none of the answer for client.sendTimeout. */
export function wasCutForSendTimeout (stream: ServerHttp2Stream | undefined): boolean {
  return stream !== undefined && CUT_FOR_SEND_TIMEOUT.has(stream)
}

/**
 * The limits an HTTP/2 session of a public listener (HTTPS, or h2c on
 * listen.http) lives under: its connection's timer counts its streams (idle
 * between them is client.keepAliveTimeout, then GOAWAY), and an answer the
 * client takes none of for client.sendTimeout (a window kept at 0) has its
 * stream reset, so it cannot keep the connection busy for ever.
 */
export function watchSession (session: ServerHttp2Session, timer: ConnectionTimer, sendTimeoutMs: () => number): void {
  timer.session(session)
  const ended = (): void => { timer.requestEnded() }
  session.on('stream', (stream: ServerHttp2Stream) => {
    timer.requestStarted()
    stream.once('close', ended)
    stream.setTimeout(sendTimeoutMs(), () => {
      if (stream.bufferSize === 0 && !(stream.writableEnded && !stream.writableFinished)) return
      CUT_FOR_SEND_TIMEOUT.add(stream)
      stream.close(constants.NGHTTP2_CANCEL)
    })
  })
}
