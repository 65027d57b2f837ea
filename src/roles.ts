import type { LoadedConfig } from './config/load-file.js'
import type { GatewayConfig } from './config/types.js'
import type { GatewayDocument } from './config/schema.js'
import { adminApp, type AdminApp } from './control-plane/admin-app.js'
import { ControlPlane } from './control-plane/control-plane.js'
import type { DataPlanes } from './control-plane/data-planes.js'
import type { DataPlane } from './data-plane/data-plane.js'
import type { InProcessDataPlane } from './cluster/in-process.js'
import type { Log } from './log/process-log.js'
import { serveTraffic } from './cluster/primary-v8.js'
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
  /** Warm every backend; one process: start its data plane. */
  readonly start: () => Promise<void>
  /** Close what the roles opened (listeners, pools, discovery). */
  readonly close: () => Promise<void>
}

/** The control plane of either role, serving `dataPlanes`, with its admin app. */
async function controlRole (config: GatewayConfig, dataPlanes: DataPlanes, options: RoleOptions): Promise<{ readonly log: Log, readonly control: ControlPlane, readonly admin: AdminApp, readonly close: () => Promise<void> }> {
  let control: ControlPlane | undefined
  const parts = processParts(options, 'primary', () => control?.state.registry.all() ?? [])
  control = await ControlPlane.create(config, { ...parts, configPath: options.configPath, onSetChanged: options.onSetChanged, loadConfig: options.loadConfig })
  const running = control
  running.serve(dataPlanes)
  const admin = await adminApp(running, dataPlanes, parts.clock)
  return {
    log: parts.log,
    control: running,
    admin,
    close: async () => {
      await admin.close()
      running.close()
    }
  }
}

/**
 * One process, both planes: the control plane and its one data plane, the
 * same WorkerLoop a cluster worker runs, joined by the in-memory channel
 * (cluster/in-process.ts): one code path for one process and a cluster. The
 * data plane exists once `start()` has run. Never listens: server.ts (or a
 * test) does.
 */
export async function singleProcess (loaded: { readonly config: GatewayConfig, readonly document: GatewayDocument }, options: RoleOptions = {}): Promise<Roles & { readonly data: DataPlane, readonly inProcess: InProcessDataPlane }> {
  serveTraffic()
  // The data plane's modules (the public app, the proxy, undici) load here, on demand: a
  // cluster's primary, which never serves traffic, never loads them (about 15 MB of RSS).
  const { InProcessDataPlane } = await import('./cluster/in-process.js')
  const planes = new InProcessDataPlane({ clock: options.clock, random: options.random, logLevel: options.logLevel })
  const { log, control, admin, close } = await controlRole(loaded.config, planes, options)
  return {
    log,
    control,
    admin,
    get data () { return planes.data },
    inProcess: planes,
    start: async () => {
      await control.start()
      await planes.start(() => control.state, loaded.document, log)
    },
    close: async () => {
      await planes.close()
      await close()
    }
  }
}

/** A cluster's primary: the control plane alone; its data planes are the workers. */
export async function primaryProcess (config: GatewayConfig, workers: DataPlanes, options: RoleOptions = {}): Promise<Roles> {
  const { log, control, admin, close } = await controlRole(config, workers, options)
  return { log, control, admin, data: undefined, start: async () => { await control.start() }, close }
}
