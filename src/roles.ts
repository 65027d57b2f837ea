import type { LoadedConfig } from './config/load-file.js'
import type { GatewayConfig } from './config/types.js'
import { adminApp, type AdminApp } from './control-plane/admin-app.js'
import { ControlPlane } from './control-plane/control-plane.js'
import type { DataPlanes } from './control-plane/data-planes.js'
import type { DataPlane } from './data-plane/data-plane.js'
import type { Log } from './log/process-log.js'
import { letYoungGenerationGrow } from './cluster/primary-heap.js'
import { processParts, type ProcessOptions } from './process.js'

export type RoleOptions = ProcessOptions & {
  readonly configPath?: string
  readonly onSetChanged?: () => void
  readonly loadConfig?: () => Promise<LoadedConfig>
}

/** The control plane with its admin app, and the data plane when this process serves traffic too. */
export type Roles = {
  readonly log: Log
  readonly control: ControlPlane
  readonly admin: AdminApp
  readonly data: DataPlane | undefined
  /** Warm every backend; the data plane's routes ready. */
  readonly start: () => Promise<void>
  /** Close what the roles opened (listeners, pools, discovery). */
  readonly close: () => Promise<void>
}

function roles (log: Log, control: ControlPlane, admin: AdminApp, data: DataPlane | undefined): Roles {
  return {
    log,
    control,
    admin,
    data,
    start: async () => { await Promise.all([control.start(), data?.start()]) },
    close: async () => {
      await data?.close()
      await admin.close()
      control.close()
    }
  }
}

/**
 * One process, both planes: the control plane and the data plane that reads
 * its routing state directly, joined by InProcessDataPlane. Never listens:
 * server.ts (or a test) does.
 */
export async function singleProcess (config: GatewayConfig, options: RoleOptions = {}): Promise<Roles & { readonly data: DataPlane }> {
  letYoungGenerationGrow()
  let control: ControlPlane | undefined
  const parts = processParts(options, 'single', () => control?.state.registry.all() ?? [])
  control = await ControlPlane.create(config, { ...parts, configPath: options.configPath, onSetChanged: options.onSetChanged, loadConfig: options.loadConfig })
  const routing = control
  // The data plane's modules (the public app, the proxy, undici) load here, on demand: a
  // cluster's primary, which never serves traffic, never loads them (about 15 MB of RSS).
  const [{ DataPlane }, { InProcessDataPlane }] = await Promise.all([import('./data-plane/data-plane.js'), import('./cluster/in-process.js')])
  const data = await DataPlane.create(config, { ...parts, routing: () => routing.state })
  const planes = new InProcessDataPlane(data)
  control.serve(planes)
  return { ...roles(parts.log, control, await adminApp(control, planes, parts.clock), data), data }
}

/** A cluster's primary: the control plane alone; its data planes are the workers. */
export async function primaryProcess (config: GatewayConfig, workers: DataPlanes, options: RoleOptions = {}): Promise<Roles> {
  let control: ControlPlane | undefined
  const parts = processParts(options, 'primary', () => control?.state.registry.all() ?? [])
  control = await ControlPlane.create(config, { ...parts, configPath: options.configPath, onSetChanged: options.onSetChanged, loadConfig: options.loadConfig })
  control.serve(workers)
  return roles(parts.log, control, await adminApp(control, workers, parts.clock), undefined)
}
