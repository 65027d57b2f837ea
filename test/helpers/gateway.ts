/** The one-process roles (control plane and data plane) on port 0, for integration tests that need their internals. */
import type { TestContext } from 'node:test'
import { singleProcess } from '../../src/roles.js'
import type { ControlPlane } from '../../src/control-plane/control-plane.js'
import { loadConfigText } from '../../src/config/load.js'
import type { Clock } from '../../src/util/clock.js'

/** Start a gateway in this process; with a ManualClock its timers (discovery, checks, ejections) move only when the test says. */
export async function startInProcess (t: TestContext, yaml: string, options: { clock?: Clock } = {}): Promise<{ gateway: ControlPlane, roles: Awaited<ReturnType<typeof singleProcess>>, url: string }> {
  const roles = await singleProcess(loadConfigText(yaml, {}), { clock: options.clock })
  await roles.start()
  await roles.data.app.listen({ host: '127.0.0.1', port: 0 })
  roles.control.setListening()
  t.after(async () => { await roles.close() })
  const address = roles.data.app.server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  return { gateway: roles.control, roles, url: `http://127.0.0.1:${port}` }
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
