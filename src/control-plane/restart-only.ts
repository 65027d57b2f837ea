import type { GatewayConfig } from '../config/types.js'

/** Settings bound once at start; a reload that changes them says so instead of half-applying. */
export function changedListeners (running: GatewayConfig, next: GatewayConfig): string[] {
  const changed: string[] = []
  if (running.listen.http?.label !== next.listen.http?.label) changed.push('listen.http')
  if (running.listen.https?.label !== next.listen.https?.label) changed.push('listen.https')
  if (running.listen.admin.label !== next.listen.admin.label) changed.push('listen.admin')
  if (running.listen.h2c !== next.listen.h2c) changed.push('listen.h2c')
  if (running.adminToken !== next.adminToken) changed.push('admin.token')
  if ([...running.adminAllowedHosts].join() !== [...next.adminAllowedHosts].join()) changed.push('admin.allowedHosts')
  if (running.statePath !== next.statePath) changed.push('statePath')
  if (running.workers !== next.workers) changed.push('workers')
  if (running.client.maxHeaderBytes !== next.client.maxHeaderBytes) changed.push('client.maxHeaderBytes')
  // The listener is made with tickets or without (SSL_OP_NO_TICKET); rotateEvery applies on reload.
  if ((running.tls?.sessionTickets.enabled ?? true) !== (next.tls?.sessionTickets.enabled ?? true)) changed.push('tls.sessionTickets.enabled')
  const listeners = (config: GatewayConfig): string => config.dns?.listen.map((address) => address.label).join(',') ?? ''
  if (listeners(running) !== listeners(next)) changed.push('dns.listen')
  // Each data plane makes its exporter when it starts.
  if (JSON.stringify(running.tracing) !== JSON.stringify(next.tracing)) changed.push('tracing')
  return changed
}

/**
 * `next` with what a data plane binds when it starts taken from `running`
 * (the listeners, the header cap, tickets on or off): a worker started to
 * replace one that died serves as the others do, not a change the last
 * reload could only announce as waiting for a restart.
 */
export function withStartOnly (running: GatewayConfig, next: GatewayConfig): GatewayConfig {
  // The certificates are the running file's: a reload that removed tls leaves this one without an
  // HTTPS listener (the others keep the certificates they hold in memory; the files of the start may
  // be gone, and reading them again would fail this worker's start over and over).
  const { tls } = next
  return {
    ...next,
    listen: { ...next.listen, http: running.listen.http, https: running.listen.https, h2c: running.listen.h2c },
    client: { ...next.client, maxHeaderBytes: running.client.maxHeaderBytes },
    tracing: running.tracing,
    tls: tls === undefined ? undefined : { ...tls, sessionTickets: { ...tls.sessionTickets, enabled: running.tls?.sessionTickets.enabled ?? tls.sessionTickets.enabled } }
  }
}
