import { readFile } from 'node:fs/promises'
import { isAbsolute, resolve } from 'node:path'
import type { ConfigIssue } from '../errors.js'
import type { GatewayConfig } from './types.js'

/**
 * htpasswd files (access.basicAuth.usersFile): `user:hash` lines with bcrypt
 * hashes (`htpasswd -B`: $2y$; $2a$ and $2b$ too). Other hash kinds (MD5
 * apr1, SHA-1, crypt, plain) are refused: they are fast to guess. Read at
 * start and at each reload, as the configuration is; a file srvgate cannot
 * use fails the start or the reload with the file and line named.
 */

/** User name → bcrypt hash (as $2b$: the same algorithm as $2y$, in the form the bcrypt package reads). */
export type UsersTable = ReadonlyMap<string, string>

const BCRYPT = /^\$2[aby]\$(0[4-9]|[12]\d|3[01])\$[./A-Za-z0-9]{53}$/

/** The table a file's text holds, or the issues of its lines (`path` names the field, `file` the file). */
export function parseUsers (text: string, file: string, path: string): UsersTable | ConfigIssue[] {
  const users = new Map<string, string>()
  const issues: ConfigIssue[] = []
  for (const [index, raw] of text.split('\n').entries()) {
    const line = raw.replace(/\r$/, '')
    if (line.trim() === '' || line.trimStart().startsWith('#')) continue
    // The line is the users file's, named in the message (an issue's own line is the configuration's).
    const at = { path }
    const colon = line.indexOf(':')
    const user = line.slice(0, colon)
    const hash = line.slice(colon + 1)
    if (colon <= 0) issues.push({ ...at, message: `${file}:${index + 1}: not user:hash` })
    else if (!BCRYPT.test(hash)) issues.push({ ...at, message: `${file}:${index + 1}: ${user}'s hash is not bcrypt (make it with htpasswd -B)` })
    else if (users.has(user)) issues.push({ ...at, message: `${file}:${index + 1}: ${user} appears twice` })
    else users.set(user, `$2b$${hash.slice(4)}`)
  }
  if (issues.length === 0 && users.size === 0) issues.push({ path, message: `${file} has no users: nobody could get through` })
  return issues.length > 0 ? issues : users
}

/** Every usersFile the configuration names, read and parsed: the tables by file, or every issue found. */
export async function readUsersFiles (config: GatewayConfig): Promise<ReadonlyMap<string, UsersTable> | ConfigIssue[]> {
  const tables = new Map<string, UsersTable>()
  const issues: ConfigIssue[] = []
  for (const [index, frontend] of config.frontends.entries()) {
    const file = frontend.access?.basicAuth?.usersFile
    if (file === undefined || tables.has(file)) continue
    const path = `frontends[${index}].access.basicAuth.usersFile`
    let text: string
    try {
      text = await readFile(file, 'utf8')
    } catch (error) {
      // A relative path is the working directory's, as every file the configuration names: the message says where that led.
      const where = isAbsolute(file) ? file : `${file} (${resolve(file)}: relative to the working directory)`
      issues.push({ path, message: `${where} cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})` })
      continue
    }
    const parsed = parseUsers(text, file, path)
    if (Array.isArray(parsed)) issues.push(...parsed)
    else tables.set(file, parsed)
  }
  return issues.length > 0 ? issues : tables
}
