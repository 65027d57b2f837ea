/**
 * access.basicAuth's check (policy/basic-auth.ts), with the bcrypt package
 * itself and tables as config/users-file.ts reads them: a table of
 * credentials and outcomes, outcomes remembered (answered without a
 * promise), a changed hash checked afresh, and the bound on waiting checks.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import bcrypt from 'bcryptjs'
import { BasicAuth, MAX_WAITING } from '../../../src/policy/basic-auth.js'
import { parseUsers, type UsersTable } from '../../../src/config/users-file.js'
import { ErrorCode, ProxyError } from '../../../src/errors.js'

// htpasswd -B writes $2y$; the table keeps the $2b$ form the package reads.
const ALICE = bcrypt.hashSync('wonderland', 4).replace(/^\$2b\$/, '$2y$')
const BOB = bcrypt.hashSync('builder', 4)
const FILE = '/etc/srvgate/preview.htpasswd'

function table (text: string): UsersTable {
  const parsed = parseUsers(text, FILE, 'usersFile')
  assert.ok(!Array.isArray(parsed), JSON.stringify(parsed))
  return parsed
}

function basic (credentials: string): string {
  return `Basic ${Buffer.from(credentials).toString('base64')}`
}

test('basicAuth: right credentials pass; missing, malformed, unknown and wrong ones are 401 with the realm\'s challenge, the password in no message', async () => {
  const auth = new BasicAuth(new Map([[FILE, table(`alice:${ALICE}\nbob:${BOB}\n`)]]))
  const cases: Array<[string | undefined, 'pass' | string]> = [
    [basic('alice:wonderland'), 'pass'],
    [basic('bob:builder'), 'pass'],
    [`bAsIc   ${Buffer.from('bob:builder').toString('base64')}`, 'pass'],
    [undefined, 'basicAuth: no credentials'],
    ['Bearer abc', 'basicAuth: malformed credentials'],
    ['Basic !!!', 'basicAuth: malformed credentials'],
    [basic('alice'), 'basicAuth: malformed credentials'],
    [basic('alice:Wonderland'), 'basicAuth: unknown user or wrong password'],
    [basic('carol:wonderland'), 'basicAuth: unknown user or wrong password'],
    [basic('alice:'), 'basicAuth: unknown user or wrong password'],
    [basic(':wonderland'), 'basicAuth: unknown user or wrong password']
  ]
  for (const [authorization, expected] of cases) {
    const outcome = await auth.check(FILE, 'previews', authorization)
    if (expected === 'pass') {
      assert.equal(outcome, undefined, authorization)
      continue
    }
    assert.ok(outcome instanceof ProxyError, authorization)
    assert.equal(outcome.code, ErrorCode.AUTH_REQUIRED)
    assert.equal(outcome.message, expected, authorization)
    assert.equal(outcome.challenge, 'Basic realm="previews", charset="UTF-8"')
    assert.ok(!outcome.message.includes('onderland'))
  }
})

test('basicAuth: an outcome is remembered (answered without a promise); a changed hash is checked afresh', async () => {
  const auth = new BasicAuth(new Map([[FILE, table(`alice:${ALICE}\n`)]]))
  assert.ok(auth.check(FILE, 'r', basic('alice:wonderland')) instanceof Promise, 'the first check runs bcrypt')
  assert.equal(await auth.check(FILE, 'r', basic('alice:wonderland')), undefined)
  assert.equal(auth.check(FILE, 'r', basic('alice:wonderland')), undefined, 'remembered: no promise')
  const wrong = auth.check(FILE, 'r', basic('alice:nope'))
  assert.ok(wrong instanceof Promise)
  await wrong
  assert.ok(auth.check(FILE, 'r', basic('alice:nope')) instanceof ProxyError, 'a refusal is remembered too')
  // A reload gives alice a new password: the old one no longer passes.
  auth.use(new Map([[FILE, table(`alice:${bcrypt.hashSync('looking-glass', 4)}\n`)]]))
  const old = await auth.check(FILE, 'r', basic('alice:wonderland'))
  assert.ok(old instanceof ProxyError)
  assert.equal(await auth.check(FILE, 'r', basic('alice:looking-glass')), undefined)
  // alice removed: refused at once, though her old outcome was remembered.
  auth.use(new Map([[FILE, table(`bob:${BOB}\n`)]]))
  assert.ok((await auth.check(FILE, 'r', basic('alice:looking-glass'))) instanceof ProxyError)
})

test(`basicAuth: past ${MAX_WAITING} checks waiting, a new one is 503 auth_unavailable at once (a guessing flood does not queue without bound)`, async () => {
  // Cost 10: each check takes long enough for the queue to fill.
  const auth = new BasicAuth(new Map([[FILE, table(`alice:${bcrypt.hashSync('x', 10)}\n`)]]))
  const pending: Array<ReturnType<BasicAuth['check']>> = []
  for (let index = 0; index < MAX_WAITING + 2; index++) pending.push(auth.check(FILE, 'r', basic(`alice:guess-${index}`)))
  assert.equal(auth.waiting, MAX_WAITING)
  const refused = auth.check(FILE, 'r', basic('alice:one-more'))
  assert.ok(refused instanceof ProxyError)
  assert.equal(refused.code, ErrorCode.AUTH_UNAVAILABLE)
  const outcomes = await Promise.all(pending)
  assert.ok(outcomes.every((outcome) => outcome instanceof ProxyError && outcome.code === ErrorCode.AUTH_REQUIRED))
  assert.equal(auth.waiting, 0)
})

test('basicAuth: a check runs off the event loop (bcryptjs on a thread): other work keeps its turns while one runs', async () => {
  const hash = bcrypt.hashSync('slow', 11)
  const auth = new BasicAuth(new Map([[FILE, table(`alice:${hash}\n`)]]))
  let longestGapMs = 0
  let last = performance.now()
  let isChecking = true
  const ticks = (async () => {
    while (isChecking) {
      await new Promise<void>((resolve) => { setImmediate(resolve) })
      const now = performance.now()
      longestGapMs = Math.max(longestGapMs, now - last)
      last = now
    }
  })()
  const started = performance.now()
  assert.equal(await auth.check(FILE, 'r', basic('alice:slow')), undefined)
  const checkMs = performance.now() - started
  isChecking = false
  await ticks
  await auth.close()
  assert.ok(checkMs > 50, `a cost-11 check takes a while (${checkMs.toFixed(0)} ms)`)
  assert.ok(longestGapMs < checkMs / 4, `the event loop turned meanwhile: longest gap ${longestGapMs.toFixed(1)} ms of ${checkMs.toFixed(0)} ms`)
})
