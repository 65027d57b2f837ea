import type { FrontendConfig } from '../config/types.js'
import { checkEnv, matchesRest, type RequestFacts } from './matcher.js'

export type RouteDecision = {
  readonly frontend: FrontendConfig
  /** Position in the file: first match wins. */
  readonly index: number
  /** The captured, checked environment for `{env}` frontends. */
  readonly env: string | undefined
}

/**
 * Frontends compiled for lookup: host-keyed rules sit in maps (exact host,
 * `*.suffix`, `{env}` capture by the suffix after the captured label), so the
 * cost of routing a request depends on the labels of its host, not on how
 * many frontends there are. Among the candidates, file order decides.
 */
export class Router {
  readonly #frontends: readonly FrontendConfig[]
  readonly #exact = new Map<string, number[]>()
  readonly #suffix = new Map<string, number[]>()
  readonly #capture = new Map<string, number[]>()
  readonly #anyHost: number[] = []
  /** The decision for a frontend without `{env}`: the same object for every request it takes. */
  readonly #fixed: ReadonlyArray<RouteDecision | undefined>
  /** Only exact hosts: a request's candidates are one map read. */
  readonly #isExactOnly: boolean

  constructor (frontends: readonly FrontendConfig[]) {
    this.#frontends = frontends
    this.#fixed = frontends.map((frontend, index) => frontend.match.host?.kind === 'capture' ? undefined : { frontend, index, env: undefined })
    frontends.forEach((frontend, index) => {
      const host = frontend.match.host
      if (host === undefined) this.#anyHost.push(index)
      else if (host.kind === 'exact') push(this.#exact, host.host, index)
      else if (host.kind === 'suffix') push(this.#suffix, host.suffix, index)
      else push(this.#capture, host.suffix, index)
    })
    this.#isExactOnly = this.#suffix.size === 0 && this.#capture.size === 0 && this.#anyHost.length === 0
  }

  route (facts: RequestFacts): RouteDecision | undefined {
    const candidates = this.#candidates(facts.host)
    for (const index of candidates) {
      const frontend = this.#frontends[index] as FrontendConfig
      if (!matchesRest(frontend, facts)) continue
      const host = frontend.match.host
      if (host?.kind !== 'capture') return this.#fixed[index]
      const env = this.#captured(host.prefix, host.suffix, facts.host)
      if (env === undefined) continue
      const checked = checkEnv(frontend, env)
      // Spec §3: a captured value that fails its pattern is 404. Routing stops here, so a
      // request meant for an environment never falls through to a later, broader rule.
      if (checked === undefined) return undefined
      return { frontend, index, env: checked }
    }
    return undefined
  }

  #candidates (host: string): readonly number[] {
    if (this.#isExactOnly) return this.#exact.get(host) ?? NONE
    const lists: number[][] = []
    const exact = this.#exact.get(host)
    if (exact !== undefined) lists.push(exact)
    if (this.#suffix.size > 0 || this.#capture.size > 0) {
      // Every proper suffix starting at a dot: a.b.example.com → .b.example.com, .example.com, .com
      for (let dot = host.indexOf('.'); dot >= 0; dot = host.indexOf('.', dot + 1)) {
        const suffix = host.slice(dot)
        const wildcard = this.#suffix.get(suffix)
        if (wildcard !== undefined) lists.push(wildcard)
        const capture = this.#capture.get(suffix)
        if (capture !== undefined) lists.push(capture)
      }
    }
    if (this.#anyHost.length > 0) lists.push(this.#anyHost)
    if (lists.length === 1) return lists[0] as number[]
    return [...new Set(lists.flat())].sort((a, b) => a - b)
  }

  /** `{prefix}{label}{suffix}` → label, when the host has exactly that shape. */
  #captured (prefix: string, suffix: string, host: string): string | undefined {
    if (!host.endsWith(suffix) || !host.startsWith(prefix)) return undefined
    const label = host.slice(prefix.length, host.length - suffix.length)
    return label.length > 0 && !label.includes('.') ? label : undefined
  }
}

const NONE: readonly number[] = []

function push (map: Map<string, number[]>, key: string, index: number): void {
  const list = map.get(key)
  if (list === undefined) map.set(key, [index])
  else list.push(index)
}
