/** access.basicAuth.usersFile (config/users-file.ts): what an htpasswd file may hold, and each refusal naming file and line. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseUsers } from '../../../src/config/users-file.js'

const HASH = '$2y$05$sBYl24WYPbaDECrlvSgtHuXv5c2iciFatrMBUVyQ81hRQHbQbLfXK'

test('users file: bcrypt lines ($2y$ read as $2b$), comments and blank lines; every other kind of line refused with file:line', () => {
  const table = parseUsers(`# previews\n\nalice:${HASH}\r\nbob:${HASH.replace('$2y$', '$2a$')}\n`, 'u.htpasswd', 'p')
  assert.ok(!Array.isArray(table))
  assert.deepEqual([...table.keys()], ['alice', 'bob'])
  assert.equal(table.get('alice'), HASH.replace('$2y$', '$2b$'))
  const cases: Array<[string, string]> = [
    ['alice:$apr1$abc$0123456789012345678901', "u.htpasswd:1: alice's hash is not bcrypt (make it with htpasswd -B)"],
    ['alice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=', "u.htpasswd:1: alice's hash is not bcrypt (make it with htpasswd -B)"],
    ['alice:plain', "u.htpasswd:1: alice's hash is not bcrypt (make it with htpasswd -B)"],
    [`alice:${HASH.replace('$05$', '$03$')}`, "u.htpasswd:1: alice's hash is not bcrypt (make it with htpasswd -B)"],
    [`no colon here`, 'u.htpasswd:1: not user:hash'],
    [`:${HASH}`, 'u.htpasswd:1: not user:hash'],
    [`alice:${HASH}\nalice:${HASH}`, 'u.htpasswd:2: alice appears twice'],
    ['# nobody\n', 'u.htpasswd has no users: nobody could get through']
  ]
  for (const [text, message] of cases) {
    const issues = parseUsers(text, 'u.htpasswd', 'frontends[0].access.basicAuth.usersFile')
    assert.ok(Array.isArray(issues), text)
    assert.deepEqual(issues.map((issue) => [issue.path, issue.message]), [['frontends[0].access.basicAuth.usersFile', message]], text)
  }
})
