/** buildGateway() in-process on port 0, for integration tests that need its internals. */
import type { TestContext } from 'node:test'
import { buildGateway, type Gateway } from '../../src/app.js'
import { parseConfigText } from '../../src/config/load.js'

export async function startInProcess (t: TestContext, yaml: string): Promise<{ gateway: Gateway, url: string }> {
  const config = parseConfigText(yaml, {})
  const gateway = await buildGateway(config)
  await gateway.start()
  await gateway.publicApp.listen({ host: '127.0.0.1', port: 0 })
  t.after(async () => { await gateway.close() })
  const address = gateway.publicApp.server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  return { gateway, url: `http://127.0.0.1:${port}` }
}
