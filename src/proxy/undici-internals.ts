import type { Socket } from 'node:net'

/**
 * undici's one door for what it does not promise: how it uses an upstream
 * socket its connector hands it. srvgate relies on two habits of undici 7's
 * HTTP/1.1 client (lib/dispatcher/client-h1.js), and patches the socket's
 * `write` and `read` to act on them:
 * - a request head is written as one latin1 string opening with the request
 *   line (writeH1: `socket.write(header, 'latin1')`);
 * - the response is read with `socket.read()` when the socket is
 *   'readable' (Parser#readMore), never from 'data' events.
 * interim-continue.ts uses this to take unsolicited `100 Continue` heads out
 * before undici's parser, which would otherwise fail the request.
 *
 * Why a patch: undici takes only a net.Socket from a connector (its types
 * and its reads of remoteAddress, ref/unref, setTypeOfService,
 * alpnProtocol), so a Duplex wrapped around the socket would lean on the
 * same unpromised habits, need a cast, and add a stream hop to every
 * response chunk. Measured 2026-12-03 (a noisy 2-core box, load 12-18):
 * the wrapper cost 0.5 µs a request more in an in-process stream loop (best
 * of 15) and +1.4 µs (median of 25 paired rounds, ±5 µs) in an undici Pool
 * over loopback; undici's own connector (no repair: a 502 on an unsolicited
 * 100) was not measurably cheaper than the patch. What it buys is behaviour
 * (RFC 9110 §15.2), not speed. test/unit/proxy/undici-internals.test.ts fails
 * when undici's habits change (upgrading undici: run it).
 */

/** What sits between undici and an upstream socket's bytes. */
export interface SocketTap {
  /** Each write undici makes, before it goes to the socket. */
  wrote (chunk: unknown): void
  /** Reads go through `filter` now; when false undici reads the socket untouched (the usual case). */
  readonly isFiltering: boolean
  /** What undici reads next, given all the socket holds now (`fresh`); null: nothing for undici yet. */
  filter (fresh: Buffer | null, isEnded: boolean): Buffer | null
}

export function tapUpstreamSocket (socket: Socket, tap: SocketTap): void {
  const read = socket.read.bind(socket)
  const write = socket.write.bind(socket) as (...args: unknown[]) => boolean
  // Per request on the hot path: no rest arguments.
  socket.write = ((chunk: unknown, encoding?: unknown, callback?: unknown): boolean => {
    tap.wrote(chunk)
    return write(chunk, encoding, callback)
  }) as Socket['write']
  socket.read = ((size?: number): unknown => {
    // read(0) (Node's own, to start reading) never returns bytes: taking them here would lose them.
    if (size === 0 || !tap.isFiltering) return read(size)
    const fresh = read() as Buffer | string | null
    return tap.filter(typeof fresh === 'string' ? Buffer.from(fresh, 'latin1') : fresh, socket.readableEnded)
  }) as Socket['read']
}
