/**
 * `run --pid-file PATH` against what an attacker (anyone who can write in
 * PATH's folder) or a mistake can put there: a FIFO, a symbolic link, a file
 * claimed by another srvgate between the check at start and the write once
 * listening. Real files in a temporary folder.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PidFile } from '../../../src/cli/pid-file.js'
import { ErrorCode, PidFileError } from '../../../src/errors.js'

const folder = (): string => mkdtempSync(join(tmpdir(), 'srvgate-pid-unit-'))
const refusedAs = (code: ErrorCode, message: RegExp) => (error: unknown): boolean => {
  assert.ok(error instanceof PidFileError)
  assert.equal(error.code, code)
  assert.match(error.message, message)
  return true
}

test('a FIFO at PATH is refused at once, never waited on', async () => {
  const path = join(folder(), 'srvgate.pid')
  execFileSync('mkfifo', [path])
  const started = performance.now()
  await assert.rejects(PidFile.claim(path), refusedAs(ErrorCode.PID_FILE_UNUSABLE, /is not a regular file/))
  assert.ok(performance.now() - started < 2000)
})

test('a symbolic link at PATH is refused, and what it points at is left alone', async () => {
  const dir = folder()
  const victim = join(dir, 'victim')
  writeFileSync(victim, '4242\n')
  const path = join(dir, 'srvgate.pid')
  symlinkSync(victim, path)
  await assert.rejects(PidFile.claim(path), refusedAs(ErrorCode.PID_FILE_UNUSABLE, /symbolic link/))
  assert.equal(readFileSync(victim, 'utf8'), '4242\n')
})

test('the file is written whole, beside under an unguessable name, and nothing is left beside it', async () => {
  const dir = folder()
  const path = join(dir, 'srvgate.pid')
  const file = await PidFile.claim(path, 4242)
  await file.write()
  assert.equal(readFileSync(path, 'utf8'), '4242\n')
  assert.deepEqual(readdirSync(dir), ['srvgate.pid'])
})

test('claimed by a running process between the check and the write: the write is refused and the file left as it is', async () => {
  const path = join(folder(), 'srvgate.pid')
  const file = await PidFile.claim(path, 4242)
  // Another srvgate (here: this test's parent, which runs) wrote its pid meanwhile.
  writeFileSync(path, `${process.ppid}\n`)
  await assert.rejects(file.write(), refusedAs(ErrorCode.PID_FILE_IN_USE, new RegExp(`process ${process.ppid} is running`)))
  assert.equal(readFileSync(path, 'utf8'), `${process.ppid}\n`)
})

test('a file naming a process that has gone is replaced', async () => {
  const path = join(folder(), 'srvgate.pid')
  const file = await PidFile.claim(path, 4242)
  // No process has this pid (above the kernel's pid_max).
  writeFileSync(path, '4194305\n')
  await file.write()
  assert.equal(readFileSync(path, 'utf8'), '4242\n')
})
