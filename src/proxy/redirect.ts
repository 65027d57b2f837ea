import type { FrontendConfig } from '../config/types.js'
import { PolicyAnswer } from '../policy/policy-answer.js'

/**
 * The Location of a frontend's `redirect` (Caddy's redir, Traefik's
 * redirectRegex without the regex): `to` with `{host}` (the request's host,
 * without a port), `{path}` (as sent, without the query), `{query}` (the
 * query string without its `?`; a `?{query}` with no query is left out
 * whole) and `{env}` filled in. Octets outside printable ASCII (a UTF-8
 * path) are percent-encoded: a header carries no others.
 */
export function redirectTo (redirect: NonNullable<FrontendConfig['redirect']>, facts: { readonly host: string, readonly path: string, readonly query: string, readonly env: string | undefined }): PolicyAnswer {
  const withQuery = facts.query === '' ? redirect.to.replaceAll('?{query}', '') : redirect.to
  // A path of `//evil.example` (or `/\\evil.example`, which browsers read alike) would make a
  // `to` that starts with {path} a protocol-relative URL to another site: its leading slashes are one.
  const path = facts.path.replace(/^[/\\]+/, '/')
  const location = withQuery
    .replaceAll('{host}', facts.host)
    .replaceAll('{path}', path)
    .replaceAll('{query}', facts.query)
    .replaceAll('{env}', facts.env ?? '')
  return new PolicyAnswer(redirect.status, [['location', location.replace(/[^\x21-\x7e]/g, (character) => encodeURIComponent(character))]])
}
