import type { GatewayConfig } from '../config/types.js'
import { ListenError } from '../errors.js'
import { boundAddress } from '../util/address.js'
import { sleep, systemClock, within } from '../util/clock.js'
import type { DataPlane } from './data-plane.js'

/** Where the public listeners ended up (their ports, when 0 was asked). */
export type PublicAddresses = { readonly http?: { host: string, port: number }, readonly https?: { host: string, port: number } }

/** Listen on listen.http (fastify) and listen.https (the TLS listener routing into the same fastify). */
export async function listenTraffic (data: DataPlane, listen: GatewayConfig['listen']): Promise<PublicAddresses> {
  const addresses: { http?: { host: string, port: number }, https?: { host: string, port: number } } = {}
  if (listen.http !== undefined) {
    const http = listen.http
    await naming('listen.http', http.label, data.app.listen({ host: http.host, port: http.port }))
    addresses.http = boundAddress(data.app.server.address(), http)
  }
  const tls = data.tlsListener
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
 * worker): answers say Connection: close, drain.delay, the listeners close,
 * in-flight requests finish; at drain.timeout every connection, queued
 * upstream request and pool is destroyed, so this always ends within
 * delay + timeout + ~1 s. (Readiness is the control plane's: it fails first.)
 */
export async function drainTraffic (data: DataPlane, drain: GatewayConfig['drain']): Promise<void> {
  const { delayMs, timeoutMs } = drain
  data.setDraining()
  data.log.info({ delayMs, timeoutMs }, 'draining: readyz answers 503')
  await sleep(systemClock, delayMs)
  data.h2c?.close()
  const closing = Promise.all([data.app.close(), data.tlsListener?.close()]).then(() => 'closed' as const)
  const outcome = await within(systemClock, closing, timeoutMs)
  if (outcome === 'timeout') {
    data.log.warn({ timeoutMs, inFlight: (await data.metrics.inFlight.get()).values[0]?.value ?? 0 }, 'drain timeout: closing the remaining connections')
    data.app.server.closeAllConnections()
    data.tlsListener?.destroyAll()
    data.h2c?.destroyAll()
    await data.pools.destroy()
    await within(systemClock, closing, 1000)
  }
}
