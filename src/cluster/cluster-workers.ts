import cluster from 'node:cluster'
import type { Log } from '../log/process-log.js'
import { channelToWorker } from './channel.js'
import type { DataPlaneProcess, Spawner } from './spawner.js'
import { workerExecArgv } from './worker-v8.js'
import { workerMallocEnv } from './worker-malloc.js'

/** The data planes as forked node:cluster workers running `exec` (cluster/worker-main.js) with `args`. */
export function clusterWorkers (exec: string, args: readonly string[]): Spawner {
  return {
    setup: () => {
      // The kernel hands connections to the workers (SCHED_NONE), not the primary (SCHED_RR):
      // a connection the primary has passed to a worker that dies before taking it is lost
      // in the primary and hangs its client forever; accepted by the kernel, it is reset.
      // No primary hop per connection either. Under load the kernel spreads them evenly
      // enough (docs/BENCHMARKS.md).
      cluster.schedulingPolicy = cluster.SCHED_NONE
      cluster.setupPrimary({ exec, args: [...args], execArgv: workerExecArgv(process.execArgv, process.env.NODE_OPTIONS) })
    },
    spawn: (log: Log): DataPlaneProcess => {
      const worker = cluster.fork(workerMallocEnv(process.env))
      return {
        id: worker.id,
        get pid () { return worker.process.pid },
        channel: channelToWorker(worker, log),
        isDead: () => worker.isDead(),
        isConnected: () => worker.isConnected(),
        kill: () => { worker.process.kill('SIGKILL') },
        onExit: (handler) => { worker.once('exit', handler) }
      }
    }
  }
}
