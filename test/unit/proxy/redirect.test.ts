import { test } from 'node:test'
import assert from 'node:assert/strict'
import { redirectTo } from '../../../src/proxy/redirect.js'
import { parseConfigText } from '../../../src/config/load.js'
import { upstreamPath } from '../../../src/proxy/route-request.js'

test('redirect: placeholders filled, ?{query} left out whole without a query, octets outside printable ASCII percent-encoded', () => {
  const cases: Array<[string, { host: string, path: string, query: string, env?: string }, string]> = [
    ['https://{host}{path}?{query}', { host: 'www.example.com', path: '/a/b', query: 'x=1&y=2' }, 'https://www.example.com/a/b?x=1&y=2'],
    ['https://{host}{path}?{query}', { host: 'www.example.com', path: '/a', query: '' }, 'https://www.example.com/a'],
    ['https://new.example.com/{env}{path}', { host: 'pr-7.old.example.com', path: '/x', query: '', env: 'pr-7' }, 'https://new.example.com/pr-7/x'],
    ['/login?next={path}', { host: 'h', path: '/caf\u00e9 menu', query: '' }, '/login?next=/caf%C3%A9%20menu'],
    ['https://[::1]:8443{path}', { host: '[::1]', path: '/', query: '' }, 'https://[::1]:8443/'],
    ['{path}', { host: 'h', path: '//evil.example/x', query: '' }, '/evil.example/x'],
    ['{path}', { host: 'h', path: '/\\evil.example', query: '' }, '/evil.example']
  ]
  for (const [to, facts, location] of cases) {
    const answer = redirectTo({ to, status: 308 }, { ...facts, env: facts.env })
    assert.deepEqual([answer.status, answer.headers], [308, [['location', location]]], to)
  }
})

const BASE = `
listen: { http: 127.0.0.1:8080 }
resolvers: { consul: { nameservers: [127.0.0.1:8600] } }
backends: { web: { discovery: { resolver: consul, srv: _web._tcp.service.consul } } }
`

test('redirect: the status defaults to 302; an unknown placeholder, {env} without a capture, a status that is not a redirect are refused with their path', () => {
  assert.deepEqual(parseConfigText(`${BASE}frontends: [ { name: old, match: {}, backend: web, redirect: { to: "https://{host}{path}" } } ]\n`, {}).frontends[0]?.redirect, { to: 'https://{host}{path}', status: 302 })
  for (const [redirect, message] of [
    ['{ to: "https://{hostname}/" }', 'frontends[0].redirect.to: {hostname} is not a placeholder'],
    ['{ to: "/{env}/" }', 'frontends[0].redirect.to: {env} needs a match.host that captures {env}'],
    ['{ to: "/", status: 200 }', 'frontends[0].redirect.status']
  ] as const) {
    assert.throws(() => parseConfigText(`${BASE}frontends: [ { name: old, match: {}, backend: web, redirect: ${redirect} } ]\n`, {}), (error: Error) => error.message.includes(message), redirect)
  }
})

test('rewrite: addPrefix after stripPrefix, the query kept as sent', () => {
  const config = parseConfigText(`${BASE}frontends: [ { name: api, match: { pathPrefix: /api/ }, backend: web, rewrite: { stripPrefix: /api, addPrefix: /v2/ } } ]\n`, {})
  const frontend = config.frontends[0]
  assert.equal(upstreamPath('/api/users?id=1', frontend), '/v2/users?id=1')
  assert.equal(upstreamPath('/api', frontend), '/v2/')
})
