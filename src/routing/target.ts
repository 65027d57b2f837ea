import { ErrorCode, ProxyError, withoutStack } from '../errors.js'

const UNRESERVED = /^[A-Za-z0-9._~-]$/
/** Quick test: a target with none of these is already in normal form (the common case costs a regex test). */
const MAYBE_ABNORMAL = /%|\/\/|\/\.|\\/

/**
 * The request target srvgate routes, checks policies on and forwards, in one
 * form, so that `pathPrefix` (and the access on it) sees the path the
 * instance will act on (RFC 3986 §6.2.2): percent-encoded unreserved
 * characters decoded (`/%61dmin` is `/admin`), `.` segments removed, runs of
 * slashes made one. Refused (400), as Traefik refuses them by default: an
 * encoded slash, backslash or NUL (`%2F`, `%5C`, `%00`, which some instances
 * decode into a path of their own), a raw backslash (read as a slash on
 * Windows servers), a `%` that starts no escape (a second decoding would
 * make one: `/%%36%31dmin`). `..` segments are refused by route-request.ts. The
 * query is left as sent; an absolute-form target becomes origin-form.
 */
export function normalizeTarget (url: string): string | ProxyError {
  const queryAt = url.indexOf('?')
  // Absolute form (a proxy-style request line) becomes its path: the Host header names the authority, as for origin form.
  const path = pathOf(url)
  if (!path.startsWith('/')) return url
  const query = queryAt < 0 ? '' : url.slice(queryAt)
  if (!MAYBE_ABNORMAL.test(path)) return queryAt < 0 && url.startsWith('/') ? url : path + query
  if (path.includes('\\')) return refused('a backslash in the path')
  let decoded = ''
  for (let index = 0; index < path.length; index++) {
    const character = path[index] as string
    if (character !== '%') {
      decoded += character
      continue
    }
    const hex = path.slice(index + 1, index + 3)
    // A % that starts no escape (`%%36%31`, `%2%46`) would let a second decoding make one the check never saw.
    if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return refused('a % that starts no escape in the path')
    const code = Number.parseInt(hex, 16)
    if (code === 0x2f || code === 0x5c || code === 0) return refused(`an encoded ${code === 0x2f ? 'slash' : code === 0x5c ? 'backslash' : 'NUL'} in the path`)
    const plain = String.fromCharCode(code)
    if (UNRESERVED.test(plain)) {
      decoded += plain
      index += 2
    } else {
      decoded += character
    }
  }
  const segments = decoded.replace(/\/{2,}/g, '/').split('/')
  const kept = segments.filter((segment, index) => segment !== '.' || index === 0)
  // A path that ended in a `.` segment ends in a slash, as RFC 3986 §5.2.4 leaves it.
  if (segments.at(-1) === '.' && (kept.at(-1) !== '' || kept.length === 1)) kept.push('')
  return kept.join('/') + query
}

function refused (why: string): ProxyError {
  return withoutStack(() => new ProxyError(ErrorCode.REQUEST_MALFORMED, `${why}: refused (its meaning differs between servers)`))
}

/** The path without the query; for an absolute-form target, without scheme, authority and userinfo. */
export function pathOf (url: string): string {
  const query = url.indexOf('?')
  const target = query < 0 ? url : url.slice(0, query)
  if (target.startsWith('/') || target === '*') return target
  const match = /^[a-z][a-z0-9+.-]*:\/\/[^/]*(\/.*)?$/i.exec(target)
  return match === null ? target : match[1] ?? '/'
}
