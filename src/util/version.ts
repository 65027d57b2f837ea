import { createRequire } from 'node:module'

/** srvgate's version, from package.json (from src/util and dist/util alike). */
export const VERSION = (createRequire(import.meta.url)('../../package.json') as { version: string }).version
