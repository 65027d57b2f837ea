/**
 * The entry point of a cluster worker (the primary forks it with
 * `--log-level LEVEL`); cluster/worker.ts does the work.
 */
import { runWorker } from './worker.js'

const index = process.argv.indexOf('--log-level')
await runWorker({ logLevel: index < 0 ? 'info' : process.argv[index + 1] ?? 'info' })
