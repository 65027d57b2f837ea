import type { Gateway } from './app.js'
import type { GatewayConfig } from './config/types.js'
import { boundAddress } from './util/address.js'
import { ListenError } from './errors.js'
import { sleep, systemClock, type Timer } from './util/clock.js'

/** Where the public listeners ended up (their ports, when 0 was asked). */
export type PublicAddresses = { readonly http?: { host: string, port: number }, readonly https?: { host: string, port: number } }

/** Listen on listen.http (fastify) and listen.https (the TLS listener routing into the same fastify). */
export async function listenTraffic (gateway: Gateway, listen: GatewayConfig['listen']): Promise<PublicAddresses> {
  const addresses: { http?: { host: string, port: number }, https?: { host: string, port: number } } = {}
  if (listen.http !== undefined) {
    const http = listen.http
    await naming('listen.http', http.label, gateway.publicApp.listen({ host: http.host, port: http.port }))
    addresses.http = boundAddress(gateway.publicApp.server.address(), http)
  }
  const tls = gateway.tlsListener
  if (listen.https !== undefined && tls !== undefined) {
    const https = listen.https
    await naming('listen.https', https.label, new Promise<void>((resolve, reject) => {
      tls.listener.once('error', reject)
      tls.listener.listen(https.port, https.host, () => {
        tls.listener.removeListener('error', reject)
        resolve()
      })
    }))
    addresses.https = boundAddress(tls.listener.address(), https)
  }
  return addresses
}

/** A bind that fails says which field of the file to change (EADDRINUSE alone names no field). */
export async function naming<T> (path: string, address: string, binding: Promise<T>): Promise<T> {
  try {
    return await binding
  } catch (error) {
    throw new ListenError(path, address, error)
  }
}

/**
 * Stop taking traffic, the way SIGTERM asks (one process, or each cluster
 * worker): readyz 503, drain.delay, the listener closes, in-flight requests
 * finish; at drain.timeout every connection, queued upstream request and pool
 * is destroyed, so this always ends within delay + timeout + ~1 s.
 */
export async function drainTraffic (gateway: Gateway): Promise<void> {
  const log = gateway.log
  const { delayMs, timeoutMs } = gateway.state.config.drain
  gateway.setDraining()
  log.info({ delayMs, timeoutMs }, 'draining: readyz answers 503')
  await sleep(systemClock, delayMs)
  const closing = Promise.all([gateway.publicApp.close(), gateway.tlsListener?.close()]).then(() => 'closed' as const)
  const outcome = await within(closing, timeoutMs)
  if (outcome === 'timeout') {
    log.warn({ timeoutMs, inFlight: (await gateway.metrics.inFlight.get()).values[0]?.value ?? 0 }, 'drain timeout: closing the remaining connections')
    gateway.publicApp.server.closeAllConnections()
    gateway.tlsListener?.destroyAll()
    await gateway.dispatcher.destroy()
    await within(closing, 1000)
  }
}

/** `work`'s value, or 'timeout' after `ms` (the timer is cancelled either way). */
export async function within<T> (work: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: Timer | undefined
  const deadline = new Promise<'timeout'>((resolve) => { timer = systemClock.setTimeout(() => { resolve('timeout') }, ms) })
  try {
    return await Promise.race([work, deadline])
  } finally {
    timer?.cancel()
  }
}
