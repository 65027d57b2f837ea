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
 * Why a patch, though it saves little time: there is no public way to the
 * same behaviour. undici's connector contract is a net.Socket (its types, and
 * its reads of remoteAddress, ref/unref, setTypeOfService, alpnProtocol), so
 * a Duplex wrapped around the socket would lean on the same unpromised
 * habits, need a cast, and add a stream hop to every chunk; undici's own
 * connector answers an unsolicited 100 with a 502. Measured 2026-12-03 on a
 * 2-core box under load 10-26: in an in-process loop of one request head
 * written and one response read (best of 15, 3 runs each) the wrapper cost
 * -0.1 to +0.7 µs a request more than the patch, the patch -0.8 to +1.3 µs more
 * than nothing (noise); in an undici Pool over loopback the wrapper +1.4 µs
 * a request (median of 25 paired rounds, quartiles -4.2 / +6.7). So the
 * patch saves under 2 µs a request: what it buys is behaviour (RFC 9110
 * §15.2). test/unit/proxy/undici-internals.test.ts fails when undici's
 * habits change, or when undici alone starts tolerating a 100 (upgrading
 * undici: run it).
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
