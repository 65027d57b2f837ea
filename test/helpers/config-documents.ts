import { checkConfigText } from '../../src/config/load.js'
import type { GatewayDocument } from '../../src/config/schema.js'

/**
 * A checked configuration document, as the control plane sends its data
 * planes: the smallest valid one, told apart from others by its port.
 */
export function documentListening (port: number): GatewayDocument {
  return checkConfigText(`listen: { http: "127.0.0.1:${port}" }\n`, {}).document
}
