import type { Gateway } from './app.js'
import { sleep, systemClock, type Timer } from './util/clock.js'

/**
 * Stop taking traffic, the way SIGTERM asks (one process, or each cluster
 * worker): readyz 503, drain.delay, the listener closes, in-flight requests
 * finish; at drain.timeout every connection, queued upstream request and pool
 * is destroyed, so this always ends within delay + timeout + ~1 s.
 */
export async function drainTraffic (gateway: Gateway): Promise<void> {
  const log = gateway.publicApp.log
  const { delayMs, timeoutMs } = gateway.state.config.drain
  gateway.setDraining()
  log.info({ delayMs, timeoutMs }, 'draining: readyz answers 503')
  await sleep(systemClock, delayMs)
  const closing = gateway.publicApp.close().then(() => 'closed' as const)
  const outcome = await within(closing, timeoutMs)
  if (outcome === 'timeout') {
    log.warn({ timeoutMs, inFlight: (await gateway.metrics.inFlight.get()).values[0]?.value ?? 0 }, 'drain timeout: closing the remaining connections')
    gateway.publicApp.server.closeAllConnections()
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
