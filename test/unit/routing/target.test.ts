/**
 * routing/target.ts: the one form of a request target that routing,
 * policies and the instance see. Each spelling of /admin/ an attacker tried
 * against a pathPrefix frontend (issue 24's attack) comes out as /admin/;
 * the spellings servers read differently are refused.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { normalizeTarget } from '../../../src/routing/target.js'
import { ProxyError } from '../../../src/errors.js'

test('normalizeTarget: unreserved escapes decoded, dot segments and slash runs gone, the query kept; encoded slash, backslash and NUL refused', () => {
  const rows: Array<[string, string | 'refused']> = [
    ['/admin/secret.txt', '/admin/secret.txt'],
    ['/%61dmin/secret.txt', '/admin/secret.txt'],
    ['/%41DMIN', '/ADMIN'],
    ['/./admin/secret.txt', '/admin/secret.txt'],
    ['//admin/secret.txt', '/admin/secret.txt'],
    ['/a//b///c?x=//y', '/a/b/c?x=//y'],
    ['/a/.', '/a/'],
    ['/.', '/'],
    ['/%2e/admin', '/admin'],
    ['/%2e%2e/admin', '/../admin'],
    ['/.well-known/acme-challenge/tok', '/.well-known/acme-challenge/tok'],
    ['/caf%C3%A9?q=%2F', '/caf%C3%A9?q=%2F'],
    ['/100%25', '/100%25'],
    ['/bad%zz', 'refused'],
    ['/%%36%31dmin/secret.txt', 'refused'],
    ['/pub/%2%46..%2%46admin', 'refused'],
    ['/100%', 'refused'],
    ['/%2536%31dmin', '/%25361dmin'],
    ['http://example.com//a/%62?q', '/a/b?q'],
    ['http://example.com', '/'],
    ['*', '*'],
    ['/', '/'],
    ['/admin%2fsecret.txt', 'refused'],
    ['/static/..%2Fadmin', 'refused'],
    ['/a%5cb', 'refused'],
    ['/a\\b', 'refused'],
    ['/a%00b', 'refused']
  ]
  for (const [target, expected] of rows) {
    const normal = normalizeTarget(target)
    if (expected === 'refused') assert.ok(normal instanceof ProxyError, target)
    else assert.equal(normal, expected, target)
  }
})
