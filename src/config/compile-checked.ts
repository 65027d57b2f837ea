import type { GatewayConfig } from './types.js'
import type { CheckedDocument } from './check-in-child.js'
import { compileDocument } from './compile.js'
import { deepFreeze } from './freeze.js'

/**
 * A checked document compiled again where it is used: a compiled
 * configuration holds class instances, so it cannot cross processes; the
 * document can. Loads neither the YAML parser nor the validator (a cluster
 * worker compiles what its primary checked).
 */
export function compileChecked (checked: CheckedDocument): GatewayConfig {
  const { config } = compileDocument(checked.document)
  return deepFreeze({ ...config, warnings: checked.warnings })
}
