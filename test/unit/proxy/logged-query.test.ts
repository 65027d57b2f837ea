/** accessLog.query: what the access log shows of a query string, by table. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { loggedQuery } from '../../../src/proxy/logged-query.js'

const URL = '/search?q=shoes&token=s3cr3t&page=2&user%5Fid=7&debug&eyJhbGciOi'

test('accessLog.query: false shows nothing, true shows the query as sent, a list shows only its keys\' values', () => {
  const rows: Array<[string, string | undefined, false | true | string[], string | undefined]> = [
    ['false (the default): never', URL, false, undefined],
    ['true: as sent, encoding kept', URL, true, 'q=shoes&token=s3cr3t&page=2&user%5Fid=7&debug&eyJhbGciOi'],
    ['a list: listed keys keep their values, others are REDACTED, bare parts too', URL, ['q', 'page'], 'q=shoes&token=REDACTED&page=2&user%5Fid=REDACTED&REDACTED&REDACTED'],
    ['keys are compared decoded; a listed bare key is shown', URL, ['user_id', 'debug'], 'q=REDACTED&token=REDACTED&page=REDACTED&user%5Fid=7&debug&REDACTED'],
    ['+ is a space in a key', '/?first+name=Ann&x=1', ['first name'], 'first+name=Ann&x=REDACTED'],
    ['a malformed escape is compared as sent', '/?a%zz=1&b=2', ['a%zz'], 'a%zz=1&b=REDACTED'],
    ['an empty list redacts every value', '/?a=1&b=', [], 'a=REDACTED&b=REDACTED'],
    ['keys are case-sensitive', '/?Token=1', ['token'], 'Token=REDACTED'],
    ['empty parts stay empty', '/?a=1&&b=2', ['a', 'b'], 'a=1&&b=2'],
    ['no query', '/plain', true, undefined],
    ['a lone ?', '/plain?', true, undefined],
    ['no request line', undefined, true, undefined],
    ['a fragment is not logged', '/p?a=1#frag', true, 'a=1'],
    ['; separates parts too (Rack 2, old Go and Python): a token after it is not shown under a listed key', '/?page=1;token=s3cr3t&q=x', ['page', 'q'], 'page=1;token=REDACTED&q=x']
  ]
  for (const [name, url, rule, expected] of rows) {
    assert.equal(loggedQuery(url, Array.isArray(rule) ? new Set(rule) : rule), expected, name)
  }
})
