/**
 * Reaching the running gateway whatever started it (issue 22, items 1 and 6):
 * `srvgate reload`, `run --pid-file`, and a reload whose fields wait for a restart.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createServer } from 'node:http'
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ConsulLikeDnsServer, freePort } from '../helpers/dns-server.js'
import { Upstream } from '../helpers/upstream.js'
import { SpawnedGateway } from '../helpers/spawn-gateway.js'
import { srvgate } from '../helpers/cli.js'
import { send } from '../helpers/http.js'

const WEB = '_web._prod.service.consul'

async function setup (t: TestContext, extra = '', options: { args?: string[], env?: Record<string, string> } = {}) {
  const dns = await ConsulLikeDnsServer.start(t)
  const upstream = await Upstream.start(t, 'a')
  dns.setService(WEB, [{ address: '127.0.0.1', port: upstream.port }])
  const gateway = await SpawnedGateway.start(t, `
listen: { http: "127.0.0.1:\${PORT}", admin: "127.0.0.1:\${ADMIN_PORT}" }
workers: 1
resolvers: { consul: { nameservers: ["${dns.address}"], ttl: { min: 250ms, max: 1s }, timeout: 300ms, attempts: 1 } }
backends:
  web-prod: { discovery: { resolver: consul, srv: ${WEB} }, balance: round-robin }
frontends:
  - { name: prod, match: { host: www.example.com }, backend: web-prod }
${extra}`, options)
  return { dns, gateway, original: readFileSync(gateway.configPath, 'utf8') }
}

const restartSeries = (metrics: string): string[] => [...metrics.matchAll(/^srvgate_config_restart_needed\{field="([^"]+)"\} 1$/gm)].map((match) => match[1] as string)

test('srvgate reload -c FILE: applied (0), applied with fields that wait for a restart (0, a warning, the answer\'s restartNeeded, a warn log line, a metric), refused with the gateway\'s errors (1)', async (t) => {
  const { gateway, original } = await setup(t)
  const reload = async (...args: string[]) => await srvgate(['reload', '-c', gateway.configPath, ...args])

  const plain = await reload()
  assert.equal(plain.code, 0, plain.stderr)
  assert.equal(plain.stdout.trim(), 'reloaded: 1 frontend, 1 backend')
  assert.equal(plain.stderr, '')

  writeFileSync(gateway.configPath, original.replace('workers: 1', 'workers: 2').replace(`http: "127.0.0.1:${gateway.port}"`, `http: "127.0.0.1:${await freePort()}"`))
  const partial = await reload()
  assert.equal(partial.code, 0, partial.stderr)
  assert.match(partial.stdout, /^reloaded: 1 frontend, 1 backend; restart to apply listen\.http, workers$/m)
  assert.match(partial.stderr, /warning: applied, but listen\.http, workers are bound at start: the running values stay until a restart/)
  const json = JSON.parse((await reload('--json')).stdout) as { ok: boolean, restartNeeded: string[] }
  assert.deepEqual(json, { ok: true, summary: '1 frontend, 1 backend; restart to apply listen.http, workers', restartNeeded: ['listen.http', 'workers'] })
  const line = await gateway.waitForLog((entry) => entry.msg === 'configuration reloaded' && Array.isArray(entry.restartNeeded) && entry.restartNeeded.length > 0)
  assert.equal(line.level, 'warn')
  assert.deepEqual(line.restartNeeded, ['listen.http', 'workers'])
  assert.deepEqual(restartSeries((await send(`${gateway.adminUrl}/metrics`)).body), ['listen.http', 'workers'])
  const state = async () => (await send(`${gateway.adminUrl}/admin/state`)).json() as { lastReload: { result: string }, restartNeeded: string[] }
  assert.deepEqual((await state()).restartNeeded, ['listen.http', 'workers'])
  assert.equal((await send(`${gateway.url}/`, { host: 'www.example.com' })).status, 200, 'still serving on the address it was started with')

  // A refused reload changes nothing that runs: the fields still wait.
  writeFileSync(gateway.configPath, original.replace('balance: round-robin', 'balance: fastest'))
  const refused = await reload()
  assert.equal(refused.code, 1)
  assert.match(refused.stderr, /refused; the running configuration stays in use:\n {2}backends\.web-prod\.balance: must be one of: weighted, round-robin, least-request, random, hash \(line 6\)/)
  assert.deepEqual(restartSeries((await send(`${gateway.adminUrl}/metrics`)).body), ['listen.http', 'workers'])
  const afterRefusal = await state()
  assert.equal(afterRefusal.lastReload.result, 'error')
  assert.deepEqual(afterRefusal.restartNeeded, ['listen.http', 'workers'])

  // Back to what runs: nothing waits, the series is gone, the line is info again.
  writeFileSync(gateway.configPath, original)
  const back = await reload()
  assert.equal(back.code, 0, back.stderr)
  assert.equal(back.stderr, '')
  assert.deepEqual(restartSeries((await send(`${gateway.adminUrl}/metrics`)).body), [])
  assert.deepEqual((await state()).restartNeeded, [])
  await gateway.waitForLog(() => gateway.logs.filter((entry) => entry.msg === 'configuration reloaded').length >= 4)
  assert.equal(gateway.logs.filter((entry) => entry.msg === 'configuration reloaded').at(-1)?.level, 'info')
})

test('srvgate reload: the admin token from FILE, or SRVGATE_ADMIN_TOKEN with --admin; a wrong token or nothing listening is "not asked" (3)', async (t) => {
  const { gateway } = await setup(t, 'admin: { token: "${TOKEN}" }', { env: { TOKEN: 's3cret-token' } })
  const fromFile = await srvgate(['reload', '-c', gateway.configPath], { env: { TOKEN: 's3cret-token' } })
  assert.equal(fromFile.code, 0, fromFile.stderr)
  const wrongInFile = await srvgate(['reload', '-c', gateway.configPath], { env: { TOKEN: 'another' } })
  assert.equal(wrongInFile.code, 3)
  assert.match(wrongInFile.stderr, /refused the request \(401: the gateway has admin\.token set; admin\.token of .* is not the one the gateway runs with\) \(SG_ERR_ADMIN_UNAUTHORIZED\)/)

  const byUrl = await srvgate(['reload', '--admin', gateway.adminUrl], { env: { SRVGATE_ADMIN_TOKEN: 's3cret-token' } })
  assert.equal(byUrl.code, 0, byUrl.stderr)
  const bare = await srvgate(['reload', '--admin', `127.0.0.1:${gateway.adminPort}`], { env: { SRVGATE_ADMIN_TOKEN: '' } })
  assert.equal(bare.code, 3)
  assert.match(bare.stderr, /401: the gateway has admin\.token set; set SRVGATE_ADMIN_TOKEN/)

  const nobody = await srvgate(['reload', '--admin', `http://127.0.0.1:${await freePort()}`])
  assert.equal(nobody.code, 3)
  assert.match(nobody.stderr, /cannot reach the admin listener at http:\/\/127\.0\.0\.1:\d+: nothing listens there \(ECONNREFUSED\); is the gateway running\? \(SG_ERR_ADMIN_UNREACHABLE\)/)
})

test('srvgate reload against something else at the admin address: escape codes in its answer are shown, not run; an endless answer is cut off (3)', async (t) => {
  let reply: (response: import('node:http').ServerResponse) => void = () => {}
  const impostor = createServer((_request, response) => { reply(response) })
  await new Promise<void>((resolve) => { impostor.listen(0, '127.0.0.1', resolve) })
  t.after(() => { impostor.closeAllConnections(); impostor.close() })
  const address = impostor.address()
  const url = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`

  reply = (response) => { response.writeHead(422, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: false, errors: ['\u001b]0;pwned\u0007\u001b[2Jbad\nfake line'] })) }
  const refused = await srvgate(['reload', '--admin', url])
  assert.equal(refused.code, 1)
  assert.doesNotMatch(refused.stderr, /\u001b|\u0007/)
  assert.match(refused.stderr, /\\x1b\]0;pwned\\x07\\x1b\[2Jbad\\x0afake line/)

  // 64 KB chunks for as long as the client reads: srvgate's answer is a few KB.
  reply = (response) => {
    response.writeHead(200, { 'content-type': 'application/json' })
    const chunk = Buffer.alloc(65_536, 0x20)
    const more = (): void => { while (!response.destroyed && response.write(chunk)); if (!response.destroyed) response.once('drain', more) }
    more()
  }
  const flooded = await srvgate(['reload', '--admin', url, '--timeout', '20s'])
  assert.equal(flooded.code, 3)
  assert.match(flooded.stderr, /answer passed 1 MB/)
})

test('srvgate reload -c FILE finds the admin listener in a file broken elsewhere (the gateway says what is wrong); a FILE that is not YAML sends nothing (1)', async (t) => {
  const { gateway, original } = await setup(t)
  writeFileSync(gateway.configPath, original.replace('backends:', 'backends:\n  broken: { discovery: { resolver: nowhere, srv: x.consul } }'))
  const refused = await srvgate(['reload', '-c', gateway.configPath])
  assert.equal(refused.code, 1)
  assert.match(refused.stderr, /backends\.broken\.discovery\.resolver: unknown resolver "nowhere"/)
  await gateway.waitForLog((line) => line.msg === 'reload failed; the previous configuration stays in use')

  writeFileSync(gateway.configPath, `${original}\n  - { name: x, match: {`)
  const unreadable = await srvgate(['reload', '-c', gateway.configPath])
  assert.equal(unreadable.code, 1)
  assert.match(unreadable.stderr, /cannot tell where the admin listener is; nothing was sent/)
  assert.equal(gateway.logs.filter((line) => line.msg === 'reload failed; the previous configuration stays in use').length, 1, 'the gateway was not asked')
})

test('run --pid-file: written once listening with the pid that takes signals (kill -HUP $(cat PATH) reloads), removed on a clean exit', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'srvgate-pid-'))
  const pidFile = join(dir, 'srvgate.pid')
  const { gateway } = await setup(t, '', { args: ['--pid-file', pidFile] })
  // Written right after the "srvgate listening" line, which is what start waits for.
  for (let round = 0; round < 100 && !existsSync(pidFile); round++) await new Promise((resolve) => setTimeout(resolve, 20))
  const pid = Number(readFileSync(pidFile, 'utf8').trim())
  assert.equal(pid, gateway.process.pid)
  process.kill(pid, 'SIGHUP')
  await gateway.waitForLog((line) => line.msg === 'configuration reloaded')
  assert.equal(await gateway.stop(), 0)
  assert.equal(existsSync(pidFile), false)
})

test('run --pid-file: a file naming a running process refuses to start (3); one naming a process that has gone is replaced, with a warning', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'srvgate-pid-'))
  const pidFile = join(dir, 'srvgate.pid')
  const config = join(dir, 'gateway.yaml')
  writeFileSync(config, `listen: { http: "127.0.0.1:${await freePort()}", admin: "127.0.0.1:${await freePort()}" }\n`)

  writeFileSync(pidFile, `${process.pid}\n`)
  const live = await srvgate(['run', '-c', config, '--pid-file', pidFile])
  assert.equal(live.code, 3)
  assert.match(live.stderr, new RegExp(`could not start: --pid-file ${pidFile}: process ${process.pid} is running \\(another srvgate\\?\\).* \\(SG_ERR_PID_FILE_IN_USE\\)`))
  assert.equal(readFileSync(pidFile, 'utf8'), `${process.pid}\n`, 'left as it was')

  writeFileSync(pidFile, 'listen: { http: 127.0.0.1:8080 }\n')
  const other = await srvgate(['run', '-c', config, '--pid-file', pidFile])
  assert.equal(other.code, 3)
  assert.match(other.stderr, /holds something other than a process id.*\(SG_ERR_PID_FILE_UNUSABLE\)/)

  const gone = spawn(process.execPath, ['-e', ''])
  await new Promise((resolve) => gone.once('exit', resolve))
  writeFileSync(pidFile, `${String(gone.pid)}\n`)
  const dns = await ConsulLikeDnsServer.start(t)
  const gateway = await SpawnedGateway.start(t, `listen: { http: "127.0.0.1:\${PORT}", admin: "127.0.0.1:\${ADMIN_PORT}" }\nworkers: 1\nresolvers: { consul: { nameservers: ["${dns.address}"] } }\n`, { dir, args: ['--pid-file', pidFile] })
  const warning = await gateway.waitForLog((line) => line.msg === 'the pid file named a process that has gone: replaced')
  assert.equal(warning.stalePid, gone.pid)
  assert.equal(readFileSync(pidFile, 'utf8'), `${String(gateway.process.pid)}\n`)
})
