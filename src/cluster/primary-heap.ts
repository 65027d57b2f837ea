import { setFlagsFromString } from 'node:v8'

/**
 * V8's young generation, kept at its starting size in the process that
 * `srvgate` starts, until it turns out to serve traffic.
 *
 * Why: start-up (loading modules, validating the configuration, warming
 * every backend) allocates fast enough that V8 grows the young generation to
 * its maximum, two 16 MB semi-spaces, and keeps those pages until its memory
 * reducer runs 30–45 s later. A cluster's primary serves no traffic and
 * allocates little afterwards (admin requests, IPC relays, health checks), so
 * it never needs them. Measured on the 2-core box (2026-12-03, 2 workers, one
 * backend): the primary's RSS 5 s after start went from 96–99 MB to 73–86 MB,
 * and settles at 73–75 MB either way once the reducer has run.
 *
 * `--max-semi-space-size` cannot change once the heap exists, but the growth
 * factor is read each time V8 considers growing the young generation: 1 stops
 * the growth, V8's default (2) lets it grow again on demand.
 * test/unit/cluster/primary-heap.test.ts fails when V8 stops honouring it.
 */
export function keepYoungGenerationSmall (): void {
  setFlagsFromString('--semi-space-growth-factor=1')
}

/** This process serves traffic (one process, the demo): fewer scavenges under load with a young generation that grows. */
export function letYoungGenerationGrow (): void {
  setFlagsFromString(`--semi-space-growth-factor=${V8_DEFAULT_GROWTH_FACTOR}`)
}

/** V8's default --semi-space-growth-factor (src/flags/flag-definitions.h). */
const V8_DEFAULT_GROWTH_FACTOR = 2
