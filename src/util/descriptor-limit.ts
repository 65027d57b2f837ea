import { readFileSync } from 'node:fs'

/** What is assumed when the limit cannot be read (not Linux): the common default soft limit. */
const ASSUMED_LIMIT = 1024

/**
 * This process's limit on open file descriptors (RLIMIT_NOFILE, soft). Node
 * raises the soft limit to the hard one at start-up, so this is what the
 * process really has. Read from /proc/self/limits: Node exposes no getrlimit.
 */
export function descriptorLimit (limitsText = readLimits()): number {
  const line = limitsText?.split('\n').find((entry) => entry.startsWith('Max open files'))
  const soft = line?.slice('Max open files'.length).trim().split(/\s+/)[0]
  if (soft === 'unlimited') return Number.MAX_SAFE_INTEGER
  const value = Number(soft)
  return Number.isInteger(value) && value > 0 ? value : ASSUMED_LIMIT
}

function readLimits (): string | undefined {
  try {
    return readFileSync('/proc/self/limits', 'utf8')
  } catch {
    return undefined
  }
}
