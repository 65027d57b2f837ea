/** buildGateway() in-process on port 0, for integration tests that need its internals. */
import type { TestContext } from 'node:test'
import { buildGateway, type Gateway } from '../../src/app.js'
import { parseConfigText } from '../../src/config/load.js'
import type { Clock } from '../../src/util/clock.js'

/** Start a gateway in this process; with a ManualClock its timers (discovery, checks, ejections) move only when the test says. */
export async function startInProcess (t: TestContext, yaml: string, options: { clock?: Clock } = {}): Promise<{ gateway: Gateway, url: string }> {
  const config = parseConfigText(yaml, {})
  const gateway = await buildGateway(config, { clock: options.clock })
  await gateway.start()
  await gateway.publicApp.listen({ host: '127.0.0.1', port: 0 })
  gateway.setListening()
  t.after(async () => { await gateway.close() })
  const address = gateway.publicApp.server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  return { gateway, url: `http://127.0.0.1:${port}` }
}

/** Poll until `predicate` holds: for real I/O (a DNS answer, an HTTP check) to land, never for a timer. */
export async function until (predicate: () => boolean, withinMs = 3000): Promise<void> {
  const deadline = performance.now() + withinMs
  while (!predicate()) {
    if (performance.now() > deadline) throw new Error(`not within ${withinMs} ms`)
    await new Promise((resolve) => setImmediate(resolve))
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}
