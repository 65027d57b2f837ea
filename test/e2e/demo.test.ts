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
