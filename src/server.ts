import { loadConfigFile } from './config/load.js'
import type { GatewayConfig } from './config/types.js'
import { buildGateway, type Gateway } from './app.js'

export type RunningGateway = {
  readonly gateway: Gateway
  readonly config: GatewayConfig
  /** The public listener's address (its port, when 0 was asked). */
  readonly address: { readonly host: string, readonly port: number }
  readonly stop: () => Promise<void>
}

/**
 * Load, warm, listen. Nothing listens before the whole configuration is
 * valid and every backend's first resolution is done or failed (spec §5:
 * never a half-started gateway).
 */
export async function startGateway (configPath: string, options: { logLevel?: string } = {}): Promise<RunningGateway> {
  const config = await loadConfigFile(configPath)
  const gateway = await buildGateway(config, { logger: { level: options.logLevel ?? 'info' } })
  await gateway.start()
  const { host, port } = config.listen.http
  await gateway.publicApp.listen({ host, port })
  const bound = gateway.publicApp.server.address()
  const address = typeof bound === 'object' && bound !== null ? { host: bound.address, port: bound.port } : { host, port }
  gateway.publicApp.log.info({ listen: address, backends: [...config.backends.keys()], frontends: config.frontends.length }, 'srvgate listening')
  let stopping: Promise<void> | undefined
  const stop = async (): Promise<void> => {
    stopping ??= gateway.close()
    await stopping
  }
  return { gateway, config, address, stop }
}
