/**
 * V8 flags a cluster worker is forked with. A worker's young generation is
 * capped at two 4 MB semi-spaces. V8 sizes it from the machine's memory:
 * on Node 24 with 24 GB, two 32 MB semi-spaces, which a worker under load
 * fills and keeps (about 190 MB RSS a worker after a closed-loop run, against
 * 141–159 MB capped; 120 against 111 MB after 5 s at 200 req/s), with no
 * measurable gain in req/s (docs/BENCHMARKS.md, "worker memory"). Unlike the
 * primary's growth factor (primary-v8.ts), the cap can only be set when the
 * process starts, hence execArgv.
 *
 * Young collections run on the worker's own thread (--no-parallel-scavenge).
 * Workers are as many as the cores, so the helper threads a parallel
 * scavenge wakes take a core from another worker (or from the load on the
 * box) and the pause waits for them: at 5,000 req/s on 2 workers a worker
 * spent 330–450 ms of 10 s in scavenges, 85–150 of them over 1 ms, against
 * 135–215 ms and 20–41 without helpers, in 3 rounds of each
 * (docs/BENCHMARKS.md, 2026-12-06). Major collections keep their
 * concurrent marking.
 *
 * An operator's own --max-semi-space-size, and their own choice of
 * --[no-]parallel-scavenge or --single-threaded-gc (in the primary's execArgv
 * or NODE_OPTIONS, both of which workers inherit), is left to win.
 * test/unit/cluster/worker-v8.test.ts checks V8 honours the cap and takes the flag.
 */
export const WORKER_SEMI_SPACE_MB = 4

/** The execArgv to fork workers with: the primary's own, the cap and one-thread scavenges unless the operator chose otherwise. */
export function workerExecArgv (execArgv: readonly string[], nodeOptions: string | undefined): string[] {
  const given = [...execArgv, ...(nodeOptions ?? '').split(/\s+/)]
  const sets = (pattern: RegExp): boolean => given.some((flag) => pattern.test(flag))
  const flags = [...execArgv]
  if (!sets(/^--max[-_]semi[-_]space[-_]size\b/)) flags.push(`--max-semi-space-size=${WORKER_SEMI_SPACE_MB}`)
  if (!sets(/^--(no[-_])?parallel[-_]scavenge$|^--(no[-_])?single[-_]threaded[-_]gc$/)) flags.push(WORKER_SCAVENGE_FLAG)
  return flags
}

/** Young collections on the worker's thread alone (see above). */
export const WORKER_SCAVENGE_FLAG = '--no-parallel-scavenge'
