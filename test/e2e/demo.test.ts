/** `npx srvgate demo`, the README's first command: it starts, answers as it says, churns with no failure, stops on Ctrl-C. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startDemo } from '../helpers/demo.js'
import { load, send } from '../helpers/http.js'

test('srvgate demo: the printed curl commands answer as described', async (t) => {
  const demo = await startDemo(t)
  const url = `http://127.0.0.1:${demo.port}/`
  assert.match(demo.output(), /curl http:\/\/staging\.localhost:\d+\//)
  assert.match(demo.output(), new RegExp(`Dashboard: http://127\\.0\\.0\\.1:${demo.adminPort}/`))
  const prod = await send(url, { host: `localhost:${demo.port}` })
  assert.equal(prod.status, 200)
  assert.equal(prod.json().env, 'prod')
  assert.equal((await send(url, { host: `staging.localhost:${demo.port}` })).json().env, 'staging')
  assert.equal((await send(url, { host: `localhost:${demo.port}`, headers: { 'x-env': 'staging' } })).json().env, 'staging')
  assert.equal((await send(url, { host: `pr-1.preview.localhost:${demo.port}` })).json().env, 'pr-1')
  const missing = await send(url, { host: `pr-2.preview.localhost:${demo.port}` })
  assert.equal(missing.status, 503)
  assert.deepEqual(missing.json(), { error: 'no_healthy_upstream', backend: 'web-pr-2' })
  assert.equal((await send(url, { host: `evil.preview.localhost:${demo.port}` })).status, 404)
  assert.equal((await send(`http://127.0.0.1:${demo.adminPort}/`)).status, 200)
  assert.equal((await send(`http://127.0.0.1:${demo.adminPort}/readyz`)).status, 200)

  const exited = new Promise<number | null>((resolve) => demo.process.once('exit', resolve))
  demo.process.kill('SIGINT')
  assert.equal(await exited, 0, 'Ctrl-C stops everything and exits 0')
})

test('srvgate demo --churn: instances replaced on new ports, no failed request', async (t) => {
  const demo = await startDemo(t, ['--churn', '--churn-every', '400ms'])
  let isDone = false
  const running = load(async () => await send(`http://127.0.0.1:${demo.port}/`, { host: `localhost:${demo.port}` }), { concurrency: 4, until: () => isDone, maxRequests: 50_000 })
  await new Promise((resolve) => setTimeout(resolve, 5000))
  isDone = true
  const result = await running
  assert.ok((demo.output().match(/^churn: /gm) ?? []).length >= 4, demo.output())
  assert.deepEqual(result.failures, [], `${result.failures.length} of ${result.total} failed`)
  assert.ok(result.byInstance.size > 3, 'traffic followed the new instances')
})

test('srvgate demo on a busy port exits 3 and names the option that moves it; it prints how to query its registry', async (t) => {
  const { createServer } = await import('node:net')
  const { freePort } = await import('../helpers/dns-server.js')
  const { srvgate } = await import('../helpers/cli.js')
  const busy = createServer()
  const port = await freePort()
  await new Promise<void>((resolve) => busy.listen(port, '127.0.0.1', resolve))
  t.after(() => { busy.close() })
  const result = await srvgate(['demo', '--port', String(port), '--admin-port', String(await freePort())])
  assert.equal(result.code, 3)
  assert.match(result.stderr, new RegExp(`port ${port} is already in use: choose another with --port PORT`))
  const adminBusy = await srvgate(['demo', '--port', String(await freePort()), '--admin-port', String(port)])
  assert.equal(adminBusy.code, 3)
  assert.match(adminBusy.stderr, /choose another with --admin-port PORT/)

  const demo = await startDemo(t)
  const line = /npx srvgate resolve (\S+) --nameserver (\S+)/.exec(demo.output())
  assert.ok(line !== null, demo.output())
  const resolved = await srvgate(['resolve', line[1] as string, '--nameserver', line[2] as string])
  assert.equal(resolved.code, 0, resolved.stderr)
  assert.match(resolved.stdout, /3 instance\(s\)/)
})

test('the README\'s command table lists every option of srvgate demo', async () => {
  const { readFileSync } = await import('node:fs')
  const { srvgate } = await import('../helpers/cli.js')
  const help = (await srvgate(['demo', '--help'])).stdout
  const options = [...help.matchAll(/^\s+(?:-\w, )?(--[a-z-]+)/gm)].map((match) => match[1] as string).filter((option) => option !== '--help')
  assert.ok(options.length >= 5, help)
  const row = readFileSync('README.md', 'utf8').split('\n').find((line) => line.startsWith('| `srvgate demo'))
  for (const option of options) assert.ok(row?.includes(option), `${option} missing from the README's demo row: ${row}`)
})
