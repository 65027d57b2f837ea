import { readFile } from 'node:fs/promises'
import { ConfigError, ErrorCode } from '../errors.js'

/** The file's text; a file that cannot be read is a configuration error naming it. */
export async function readConfigText (file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8')
  } catch (cause) {
    throw new ConfigError(ErrorCode.CONFIG_READ, [{ path: '', message: `cannot read ${file}: ${(cause as Error).message}` }], { cause })
  }
}
