import type { AccessLogConfig } from '../config/types.js'

/** What stands for a value the configuration does not let the access log show. */
export const REDACTED = 'REDACTED'

/**
 * The query string as the access log shows it (accessLog.query), without
 * its `?`; undefined: nothing to show (none sent, or `false`). With a list of
 * keys, each `key=value` part keeps its value only when its key (decoded) is
 * listed; others keep their key, their value replaced, and a part with no
 * `=` (a bare value, perhaps a token) is replaced whole. Parts keep their
 * order and encoding, so a line can be replayed as far as it is shown.
 */
export function loggedQuery (url: string | undefined, rule: AccessLogConfig['query']): string | undefined {
  if (rule === false || url === undefined) return undefined
  const mark = url.indexOf('?')
  if (mark < 0 || mark === url.length - 1) return undefined
  // A fragment is never sent by a client; one that is goes no further into the log.
  const hash = url.indexOf('#', mark)
  const query = url.slice(mark + 1, hash < 0 ? undefined : hash)
  if (rule === true) return query
  // `;` separates parts too for some applications (Rack 2, Go before 1.17, Python before 3.9.2):
  // `page=1;token=…` must not show the token under page's name. Separators are kept as sent.
  return query.split(/([&;])/).map((part, index) => {
    if (index % 2 === 1) return part
    const equals = part.indexOf('=')
    if (equals < 0) return part === '' || rule.has(decoded(part)) ? part : REDACTED
    return rule.has(decoded(part.slice(0, equals))) ? part : `${part.slice(0, equals)}=${REDACTED}`
  }).join('')
}

/** A key as the application reads it (`+` a space, %XX decoded); a malformed escape is compared as sent. */
function decoded (key: string): string {
  const text = key.replaceAll('+', ' ')
  try {
    return decodeURIComponent(text)
  } catch {
    return text
  }
}
