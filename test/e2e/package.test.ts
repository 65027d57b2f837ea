/**
 * Packaging. No image can be pulled here, so the Dockerfile's build and run
 * steps are replayed in clean folders: each stage's COPY and RUN lines in
 * order (npm prefers its cache, which CI's own `npm ci` has just filled), then
 * the runtime stage's ENTRYPOINT + CMD with production dependencies only,
 * and a gateway must answer. The deploy/ manifests are parsed and their
 * srvgate configuration validated.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync, spawn } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { parseAllDocuments } from 'yaml'
import { compileConfig, parseConfigText } from '../../src/config/load.js'
import { ConsulLikeDnsServer, freePort } from '../helpers/dns-server.js'
import { Upstream } from '../helpers/upstream.js'
import { send } from '../helpers/http.js'

type Stage = { name: string, workdir: string, steps: Array<{ kind: 'COPY' | 'RUN', args: string }>, entrypoint: string[], cmd: string[] }

function parseDockerfile (text: string): Stage[] {
  const stages: Stage[] = []
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    const [instruction = '', ...rest] = line.split(/\s+/)
    const args = rest.join(' ')
    const stage = stages.at(-1)
    if (instruction === 'FROM') stages.push({ name: args.split(/\s+AS\s+/i)[1] ?? '', workdir: '/', steps: [], entrypoint: [], cmd: [] })
    else if (stage === undefined) continue
    else if (instruction === 'WORKDIR') stage.workdir = args
    else if (instruction === 'COPY' || instruction === 'RUN') stage.steps.push({ kind: instruction, args })
    else if (instruction === 'ENTRYPOINT') stage.entrypoint = JSON.parse(args) as string[]
    else if (instruction === 'CMD') stage.cmd = JSON.parse(args) as string[]
  }
  return stages
}

test('the Dockerfile: multi-stage, production dependencies only, non-root, HEALTHCHECK on /healthz, exec-form entrypoint', () => {
  const text = readFileSync('Dockerfile', 'utf8')
  const stages = parseDockerfile(text)
  assert.deepEqual(stages.map((stage) => stage.name), ['build', 'runtime'])
  assert.match(text, /npm ci --omit=dev/)
  assert.match(text, /^USER node$/m)
  assert.match(text, /^HEALTHCHECK .*\/healthz/m)
  assert.deepEqual(stages[1]?.entrypoint, ['node', 'dist/main.js'])
  assert.deepEqual(stages[1]?.cmd, ['run', '-c', '/etc/srvgate/gateway.yaml'])
})

test('replaying the Dockerfile in clean folders gives a gateway that answers, without dev dependencies', async (t) => {
  const stages = parseDockerfile(readFileSync('Dockerfile', 'utf8'))
  const roots = new Map<string, string>()
  const env = { ...process.env, npm_config_prefer_offline: 'true', npm_config_audit: 'false', npm_config_fund: 'false' }
  for (const stage of stages) {
    const root = mkdtempSync(join(tmpdir(), `srvgate-image-${stage.name}-`))
    roots.set(stage.name, root)
    const workdir = join(root, stage.workdir)
    mkdirSync(workdir, { recursive: true })
    for (const step of stage.steps) {
      if (step.kind === 'RUN') {
        // Paths outside the work dir (chown, /var/lib) belong to the image; replay what builds the app.
        if (/^mkdir -p \/|chown/.test(step.args)) continue
        execFileSync('bash', ['-c', step.args], { cwd: workdir, env, stdio: 'pipe', timeout: 300_000 })
        continue
      }
      const parts = step.args.split(/\s+/)
      const fromStage = parts[0]?.startsWith('--from=') === true ? parts.shift()?.slice('--from='.length) : undefined
      const destination = parts.pop() as string
      const target = destination.startsWith('/') ? join(root, destination) : join(workdir, destination)
      for (const source of parts) {
        const from = fromStage === undefined ? source : join(roots.get(fromStage) as string, source)
        const to = destination.endsWith('/') ? join(target, source.split('/').pop() as string) : target
        mkdirSync(dirname(to), { recursive: true })
        cpSync(from, to, { recursive: true })
      }
    }
  }
  const runtime = stages.at(-1) as Stage
  const app = join(roots.get(runtime.name) as string, runtime.workdir)
  assert.ok(existsSync(join(app, 'dist/main.js')), 'the built output is in the image')
  assert.ok(existsSync(join(app, 'node_modules/fastify')), 'production dependencies are installed')
  for (const devOnly of ['typescript', 'tsx', 'playwright-core', '@types/node']) assert.equal(existsSync(join(app, 'node_modules', devOnly)), false, `${devOnly} is not in the image`)
  assert.ok(existsSync(join(roots.get(runtime.name) as string, 'etc/srvgate/gateway.yaml')))

  const dns = await ConsulLikeDnsServer.start(t)
  const upstream = await Upstream.start(t, 'in-image')
  dns.setService('_web._prod.service.consul', [{ address: '127.0.0.1', port: upstream.port }])
  const port = await freePort()
  const adminPort = await freePort()
  const config = join(roots.get(runtime.name) as string, 'etc/srvgate/gateway.yaml')
  writeFileSync(config, `
listen: { http: "127.0.0.1:${port}", admin: "127.0.0.1:${adminPort}" }
drain: { delay: 0s, timeout: 5s }
resolvers: { consul: { nameservers: ["${dns.address}"] } }
backends: { web-prod: { discovery: { resolver: consul, srv: _web._prod.service.consul } } }
frontends: [ { name: prod, match: {}, backend: web-prod } ]
`)
  const args = [...runtime.entrypoint.slice(1), ...runtime.cmd.map((arg) => arg === '/etc/srvgate/gateway.yaml' ? config : arg)]
  const child = spawn(runtime.entrypoint[0] as string === 'node' ? process.execPath : runtime.entrypoint[0] as string, args, { cwd: app, env: { ...process.env, NODE_ENV: 'production' }, stdio: 'ignore' })
  t.after(() => { child.kill('SIGTERM') })
  let answer: Awaited<ReturnType<typeof send>> | undefined
  for (let attempt = 0; attempt < 100 && answer === undefined; attempt++) {
    try { answer = await send(`http://127.0.0.1:${port}/`, { host: 'www.example.com', agent: false }) } catch { await new Promise((resolve) => setTimeout(resolve, 100)) }
  }
  assert.equal(answer?.status, 200)
  assert.equal(answer?.json().instance, 'in-image')
  assert.equal((await send(`http://127.0.0.1:${adminPort}/healthz`, { agent: false })).status, 200)
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))
  child.kill('SIGTERM')
  assert.equal(await exited, 0, 'SIGTERM reaches node: drained, exit 0')
})

test('deploy/kubernetes: Deployment (2+ replicas, probes on the admin port), Service, PodDisruptionBudget, ConfigMap with a valid config', () => {
  const documents = parseAllDocuments(readFileSync('deploy/kubernetes/srvgate.yaml', 'utf8')).map((document) => {
    assert.deepEqual(document.errors, [])
    return document.toJS() as { kind: string, spec?: Record<string, any>, data?: Record<string, string> }
  })
  const byKind = new Map(documents.map((document) => [document.kind, document]))
  assert.deepEqual([...byKind.keys()].sort(), ['ConfigMap', 'Deployment', 'PodDisruptionBudget', 'Service'])
  const deployment = byKind.get('Deployment')?.spec
  assert.ok((deployment?.replicas as number) >= 2)
  const container = deployment?.template.spec.containers[0]
  assert.deepEqual(container.readinessProbe.httpGet, { path: '/readyz', port: 'admin' })
  assert.deepEqual(container.livenessProbe.httpGet, { path: '/healthz', port: 'admin' })
  assert.ok(container.ports.some((port: { name: string, containerPort: number }) => port.name === 'admin' && port.containerPort === 9901))
  assert.ok(deployment?.template.spec.terminationGracePeriodSeconds >= 40, 'room for drain.delay + drain.timeout')
  assert.equal(byKind.get('PodDisruptionBudget')?.spec?.minAvailable, 1)
  const config = parseConfigText(byKind.get('ConfigMap')?.data?.['gateway.yaml'] ?? '', { HOST_IP: '10.0.0.1', SRVGATE_ADMIN_TOKEN: 'secret' })
  assert.equal(config.listen.admin.port, 9901)
  assert.equal(config.adminToken, 'secret')
})

test('deploy/compose: Consul, two registered services and srvgate; the mounted config is valid', () => {
  const compose = parseAllDocuments(readFileSync('deploy/compose/docker-compose.yml', 'utf8'))[0]?.toJS() as { services: Record<string, { image?: string, build?: string, volumes?: string[] }> }
  assert.match(String(compose.services.consul?.image), /^hashicorp\/consul:/)
  assert.equal(compose.services.srvgate?.build, '../..')
  assert.ok(compose.services.srvgate?.volumes?.some((volume) => volume.startsWith('./gateway.yaml:/etc/srvgate/gateway.yaml')))
  const services = readFileSync('deploy/compose/consul-services.hcl', 'utf8')
  assert.equal((services.match(/^services \{/gm) ?? []).length, 2)
  const config = compileConfig(parseAllDocuments(readFileSync('deploy/compose/gateway.yaml', 'utf8'))[0]?.toJS(), {})
  assert.deepEqual([...config.backends.keys()], ['web-prod', 'web-staging'])
})
