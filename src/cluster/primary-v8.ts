import { setFlagsFromString } from 'node:v8'

/**
 * V8 set for the process that `srvgate` starts, lean until it turns out to
 * serve traffic: a cluster's primary answers no request; it relays sets and
 * health, runs checks, and serves admin, a few messages a second. Measured
 * on the 2-core box (2026-12-03, 2 workers, one backend, `ps` RSS after
 * /readyz): docs/BENCHMARKS.md, "the primary's RSS".
 *
 * 1. The young generation stays at its starting size. Start-up (loading
 *    modules, validating the configuration, warming every backend) allocates
 *    fast enough that V8 grows it to its maximum, two 16 MB semi-spaces, and
 *    keeps those pages until its memory reducer runs 30–45 s later. About
 *    11 MB. `--max-semi-space-size` cannot change once the heap exists, but
 *    the growth factor is read each time V8 considers growing it: 1 stops the
 *    growth, V8's default (2) lets it grow again on demand.
 * 2. No optimizing compilers (Maglev, TurboFan): the primary's code runs in
 *    the interpreter and Sparkplug's baseline code. On Node 24 their code pages
 *    in the node binary and their zones cost about 10 MB of RSS (85 → 75 MB),
 *    for code that is never hot here. Both flags are read when V8 decides to
 *    tier a function up, so they can be turned on again later.
 *
 * A process that serves traffic (one process, the demo, a primary with the DNS
 * face) calls serveTraffic() and gets V8's defaults back.
 * test/unit/cluster/primary-v8.test.ts fails when V8 stops honouring any of
 * these at run time.
 */
export function keepPrimaryLean (): void {
  setFlagsFromString('--semi-space-growth-factor=1')
  setFlagsFromString('--no-maglev')
  setFlagsFromString('--no-turbofan')
}

/** This process serves traffic: V8's defaults (fewer scavenges under load, optimized hot code). */
export function serveTraffic (): void {
  setFlagsFromString(`--semi-space-growth-factor=${V8_DEFAULT_GROWTH_FACTOR}`)
  setFlagsFromString('--maglev')
  setFlagsFromString('--turbofan')
}

/** V8's default --semi-space-growth-factor (src/flags/flag-definitions.h). */
const V8_DEFAULT_GROWTH_FACTOR = 2
