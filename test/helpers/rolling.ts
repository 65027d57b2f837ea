/**
 * A rolling replacement as an orchestrator does it: for each instance, a new
 * one starts and is registered, then the old record is removed, then the old
 * process stops gracefully. Shared by the resilience stories over HTTP/1.1
 * and over HTTP/2.
 */
import type { TestContext } from 'node:test'
import type { ConsulLikeDnsServer } from './dns-server.js'
import { ZONE, type BindServer } from './bind-server.js'
import { Upstream } from './upstream.js'

const sleep = async (ms: number) => { await new Promise((resolve) => setTimeout(resolve, ms)) }

/** Replaces every instance of `service` (300 ms between steps); returns what runs now, the replacements in order. */
export async function replaceEveryInstance (t: TestContext, dns: ConsulLikeDnsServer, service: string, instances: readonly Upstream[], options: { stopOld?: boolean } = {}): Promise<Upstream[]> {
  const records = (list: Upstream[]) => list.map((upstream) => ({ address: '127.0.0.1', port: upstream.port }))
  let current = [...instances]
  const replacements: Upstream[] = []
  for (const [index, old] of instances.entries()) {
    await sleep(300)
    const next = await Upstream.start(t, `v2-${index}`)
    replacements.push(next)
    current = [...current.filter((upstream) => upstream !== old), next]
    dns.setService(service, records([...current, old]))   // new record added
    await sleep(300)
    dns.setService(service, records(current))             // old record removed
    // old process stopped (left running, it shows who still holds connections to it)
    if (options.stopOld !== false) await old.stop()
  }
  return replacements
}

/** The same with BIND9 as the SRV source, changed live with nsupdate (`name`: the SRV owner, absolute). */
export async function replaceEveryInstanceInBind (t: TestContext, bind: BindServer, name: string, instances: readonly Upstream[]): Promise<Upstream[]> {
  const srv = (upstream: Upstream): string => `${name} 0 IN SRV 1 1 ${upstream.port} ${upstream.name}.${ZONE}.`
  const replacements: Upstream[] = []
  for (const [index, old] of instances.entries()) {
    await sleep(300)
    const next = await Upstream.start(t, `new${index}`)
    replacements.push(next)
    bind.update([`update add ${next.name}.${ZONE} 0 IN A 127.0.0.1`, `update add ${srv(next)}`])
    await sleep(300)
    bind.update([`update delete ${srv(old)}`])
    await old.stop()
  }
  return replacements
}
