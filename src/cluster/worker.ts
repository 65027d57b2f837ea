import { drainTraffic, listenTraffic } from '../data-plane/listeners.js'
import { channelToPrimary } from './channel.js'
import { WorkerLoop } from './worker-loop.js'

/**
 * A cluster worker: the WorkerLoop over node:cluster IPC, serving traffic
 * on the configuration's public listeners (shared with the other workers),
 * leaving the process once drained.
 */
export async function runWorker (options: { readonly logLevel: string }): Promise<void> {
  // Ctrl-C reaches the whole process group: the primary decides when workers drain.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => {})
  let loop: WorkerLoop | undefined
  const channel = channelToPrimary({
    // Before the data plane (and its logger) exists, a plain line on stderr.
    error: (fields, message) => {
      const log = loop?.gateway?.data.log
      if (log !== undefined) log.error(fields, message)
      else process.stderr.write(`${JSON.stringify({ level: 'error', pid: process.pid, ...fields, msg: message })}\n`)
    }
  })
  loop = new WorkerLoop({
    channel,
    process: { logLevel: options.logLevel, role: 'worker' },
    listen: async (data, config) => await listenTraffic(data, config.listen),
    drain: async (gateway) => {
      await gateway.closeFace()
      await drainTraffic(gateway.data, gateway.state.config.drain)
    },
    exit: (code) => process.exit(code)
  })
  loop.hello()
}
