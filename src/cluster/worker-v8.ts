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
 * An operator's own --max-semi-space-size (in the primary's execArgv or
 * NODE_OPTIONS, both of which workers inherit) is left to win.
 * test/unit/cluster/worker-v8.test.ts checks V8 honours the cap.
 */
export const WORKER_SEMI_SPACE_MB = 4

/** The execArgv to fork workers with: the primary's own, and the cap unless the operator set one. */
export function workerExecArgv (execArgv: readonly string[], nodeOptions: string | undefined): string[] {
  const operatorSet = [...execArgv, ...(nodeOptions ?? '').split(/\s+/)].some((flag) => /^--max[-_]semi[-_]space[-_]size\b/.test(flag))
  return operatorSet ? [...execArgv] : [...execArgv, `--max-semi-space-size=${WORKER_SEMI_SPACE_MB}`]
}
