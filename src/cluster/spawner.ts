import type { Log } from '../log/process-log.js'
import type { PrimaryEnd } from './channel.js'

/** A data plane the pool runs, whatever its process. */
export type DataPlaneProcess = {
  readonly id: number
  readonly pid: number | undefined
  readonly channel: PrimaryEnd
  readonly isDead: () => boolean
  readonly isConnected: () => boolean
  /** At once, no drain (start-up failed, a prepare failed, the drain overran). */
  readonly kill: () => void
  readonly onExit: (handler: (code: number | null, signal: string | null) => void) => void
}

export type Spawner = {
  /** Once, before the first spawn. */
  readonly setup: () => void
  /** A new data plane; it says hello on its channel once the pool has subscribed (after this returns). */
  readonly spawn: (log: Log) => DataPlaneProcess
}
