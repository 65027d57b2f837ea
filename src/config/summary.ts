import type { GatewayConfig } from './types.js'

/** `3 frontends, 2 backends (+1 templated), 1 split`: what `srvgate check` and a reload both say of a configuration. */
export function configSummary (config: GatewayConfig): string {
  const templates = config.frontends.filter((frontend) => frontend.backend.kind === 'template' || frontend.backend.kind === 'template-split').length
  return `${count(config.frontends.length, 'frontend')}, ${count(config.backends.size, 'backend')}` +
    `${templates > 0 ? ` (+${templates} templated)` : ''}${config.splits.size > 0 ? `, ${count(config.splits.size, 'split')}` : ''}`
}

/** `1 frontend`, `2 backends`. */
export function count (value: number, noun: string): string {
  return `${value} ${noun}${value === 1 ? '' : 's'}`
}
