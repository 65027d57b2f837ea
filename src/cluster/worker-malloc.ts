/**
 * glibc malloc's setting a cluster worker is forked with: the trim
 * threshold held at glibc's own default, 128 KiB. Left alone, glibc raises
 * it (and the mmap threshold) each time a large block is freed, up to 64 MiB,
 * and from then on keeps that much freed memory at the top of its heap
 * instead of giving it back. V8's compilers and node's buffers free such
 * blocks early in a worker's life, so a worker kept about 10 MB it no longer
 * used: 107–108 MB after light load against 97–98 MB with the threshold held
 * (docs/BENCHMARKS.md, "worker memory"), req/s within the box's noise.
 * Setting it fixes both thresholds at their defaults (mallopt(3)).
 *
 * Only glibc reads it (musl ignores it); it must be in the environment when
 * the process starts, hence the fork's env. An operator's own
 * thresholds (MALLOC_TRIM_THRESHOLD_ and its kin, or the same in
 * GLIBC_TUNABLES) are left to win.
 * test/unit/cluster/worker-malloc.test.ts checks glibc honours it.
 */
export const WORKER_MALLOC_TRIM_THRESHOLD = 128 * 1024

/** The settings that change the same thresholds, as variables and as tunables. */
const THRESHOLDS = /^MALLOC_(TRIM_THRESHOLD|MMAP_THRESHOLD|TOP_PAD|MMAP_MAX)_$/
const TUNABLES = /glibc\.malloc\.(trim_threshold|mmap_threshold|top_pad|mmap_max)=/

/** The variables to fork workers with, beside the primary's own environment (which they inherit). */
export function workerMallocEnv (env: Readonly<Record<string, string | undefined>>): Record<string, string> {
  const operatorSet = Object.keys(env).some((name) => THRESHOLDS.test(name)) || TUNABLES.test(env.GLIBC_TUNABLES ?? '')
  return operatorSet ? {} : { MALLOC_TRIM_THRESHOLD_: String(WORKER_MALLOC_TRIM_THRESHOLD) }
}
