import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseConfigText } from '../../../src/config/load.js'
import { Router } from '../../../src/routing/router.js'
import { normalizeHost, type RequestFacts } from '../../../src/routing/matcher.js'

const config = parseConfigText(`
listen: { http: 127.0.0.1:8080 }
resolvers: { consul: { nameservers: [127.0.0.1:8600] } }
backends:
  web-prod: { discovery: { resolver: consul, srv: _web._prod.service.consul } }
  web-staging: { discovery: { resolver: consul, srv: _web._staging.service.consul } }
  api: { discovery: { resolver: consul, srv: _api._prod.service.consul } }
frontends:
  - { name: staging-host, match: { host: "*.staging.example.com" }, backend: web-staging }
  - { name: canary-header, match: { host: www.example.com, headers: { x-env: staging } }, backend: web-staging }
  - name: preview
    match: { host: "{env}.preview.example.com" }
    env: { pattern: "pr-[0-9]{1,6}" }
    backend: { template: "web-{env}", discovery: { resolver: consul, srv: "_web._{env}.service.consul" } }
  - { name: api-writes, match: { host: www.example.com, pathPrefix: /api, method: [POST, PUT] }, backend: api }
  - { name: prod, match: { host: www.example.com, pathPrefix: / }, backend: web-prod }
  - { name: fallback-get, match: { method: GET, pathPrefix: /public }, backend: web-prod }
`, {})
const router = new Router(config.frontends)

function facts (host: string, path = '/', method = 'GET', headers: Record<string, string> = {}): RequestFacts {
  return { host, path, method, header: (name) => headers[name] }
}

const CASES: Array<[string, RequestFacts, string | undefined, string?]> = [
  ['exact host', facts('www.example.com'), 'prod'],
  ['header match wins over a later rule', facts('www.example.com', '/', 'GET', { 'x-env': 'staging' }), 'canary-header'],
  ['header value must be exact', facts('www.example.com', '/', 'GET', { 'x-env': 'Staging' }), 'prod'],
  ['wildcard one label', facts('app.staging.example.com'), 'staging-host'],
  ['wildcard several labels', facts('a.b.staging.example.com'), 'staging-host'],
  ['wildcard needs a label before the suffix', facts('staging.example.com'), undefined],
  ['{env} captured and checked', facts('pr-42.preview.example.com'), 'preview', 'pr-42'],
  ['{env} failing its pattern: the frontend does not match', facts('prod.preview.example.com'), undefined],
  ['{env} must be one label', facts('a.pr-1.preview.example.com'), undefined],
  ['method and path prefix', facts('www.example.com', '/api/orders', 'POST'), 'api-writes'],
  ['method not listed falls through', facts('www.example.com', '/api/orders', 'GET'), 'prod'],
  ['host-less rule matches any host', facts('other.example.org', '/public/x'), 'fallback-get'],
  ['host-less rule still checks method', facts('other.example.org', '/public/x', 'POST'), undefined],
  ['no rule', facts('other.example.org', '/'), undefined]
]

for (const [name, request, expected, env] of CASES) {
  test(`route: ${name}`, () => {
    const decision = router.route(request)
    assert.equal(decision?.frontend.name, expected)
    if (env !== undefined) assert.equal(decision?.env, env)
  })
}

test('first match wins in file order among every kind of host rule', () => {
  const ordered = parseConfigText(`
listen: { http: 127.0.0.1:8080 }
resolvers: { consul: { nameservers: [127.0.0.1:8600] } }
backends: { b: { discovery: { resolver: consul, srv: b.consul } } }
frontends:
  - { name: any-post, match: { method: POST }, backend: b }
  - { name: wildcard, match: { host: "*.example.com" }, backend: b }
  - { name: exact, match: { host: www.example.com }, backend: b }
`, {})
  const orderedRouter = new Router(ordered.frontends)
  assert.equal(orderedRouter.route(facts('www.example.com'))?.frontend.name, 'wildcard')
  assert.equal(orderedRouter.route(facts('www.example.com', '/', 'POST'))?.frontend.name, 'any-post')
})

test('a bad {env} is 404 even when a later catch-all rule would match', () => {
  const withCatchAll = parseConfigText(`
listen: { http: 127.0.0.1:8080 }
resolvers: { consul: { nameservers: [127.0.0.1:8600] } }
backends: { prod: { discovery: { resolver: consul, srv: p.consul } } }
frontends:
  - name: preview
    match: { host: "{env}.preview.example.com" }
    env: { pattern: "pr-[0-9]+" }
    backend: { template: "web-{env}", discovery: { resolver: consul, srv: "_web._{env}.service.consul" } }
  - { name: everything, match: {}, backend: prod }
`, {})
  const catchAll = new Router(withCatchAll.frontends)
  assert.equal(catchAll.route(facts('evil.preview.example.com')), undefined)
  assert.equal(catchAll.route(facts('pr-1.preview.example.com'))?.frontend.name, 'preview')
  assert.equal(catchAll.route(facts('a.b.preview.example.com'))?.frontend.name, 'everything', 'not the capture\'s shape: later rules apply')
  assert.equal(catchAll.route(facts('www.example.com'))?.frontend.name, 'everything')
})

test('normalizeHost: lower-case, port and root dot removed; garbage rejected', () => {
  const cases: Array<[string | undefined, string | undefined]> = [
    ['WWW.Example.com', 'www.example.com'], ['www.example.com:8080', 'www.example.com'], ['www.example.com.', 'www.example.com'],
    ['127.0.0.1:80', '127.0.0.1'], ['[::1]:8080', '[::1]'], ['[::1]', '[::1]'],
    [undefined, undefined], ['', undefined], ['a b', undefined], ['exa/mple.com', undefined], ['..', undefined], ['a..b', undefined],
    ['host:port', undefined], ['[::1', undefined], ['x'.repeat(300), undefined]
  ]
  for (const [input, expected] of cases) assert.equal(normalizeHost(input), expected, String(input))
})
