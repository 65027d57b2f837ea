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
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
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

/** The packages under node_modules that `files` (paths or file: URLs) belong to. */
function packagesOf (files: readonly string[]): string[] {
  const names = new Set<string>()
  for (const file of files) {
    const match = /node_modules\/((?:@[^/]+\/)?[^/]+)\/(?!.*node_modules\/)/.exec(decodeURIComponent(file))
    if (match !== null) names.add(match[1] as string)
  }
  return [...names].sort()
}

test('npm pack: LICENSE, dist built (no source maps, no sources), no install-time script; installed from the tarball it runs, and srvgate/client loads none of the gateway\'s server side', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'srvgate-pack-'))
  t.after(() => { rmSync(dir, { recursive: true, force: true }) })
  const env = { ...process.env, npm_config_prefer_offline: 'true', npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' }
  // prepack builds dist/ first: what is packed is never a stale build.
  const [packed] = JSON.parse(execFileSync('npm', ['pack', '--json', '--pack-destination', dir], { env, encoding: 'utf8', timeout: 300_000, stdio: ['ignore', 'pipe', 'pipe'] })) as Array<{ filename: string, files: Array<{ path: string }> }>
  const files = (packed?.files ?? []).map((file) => file.path)
  for (const needed of ['LICENSE', 'README.md', 'package.json', 'dist/main.js', 'dist/client/client.js', 'dist/client/client.d.ts', 'config/gateway.schema.json']) assert.ok(files.includes(needed), `${needed} is packed`)
  assert.deepEqual(files.filter((file) => file.endsWith('.map') || file.endsWith('.ts') && !file.endsWith('.d.ts') || file.startsWith('src/')), [], 'no source maps, no sources')
  assert.match(readFileSync('LICENSE', 'utf8'), /^\s*Apache License\s+Version 2\.0, January 2004/)
  assert.match(readFileSync('LICENSE', 'utf8'), /END OF TERMS AND CONDITIONS/)
  assert.equal(JSON.parse(readFileSync('package.json', 'utf8')).license, 'Apache-2.0')
  const tarball = join(dir, packed?.filename as string)
  const manifest = JSON.parse(execFileSync('tar', ['-xOzf', tarball, 'package/package.json'], { encoding: 'utf8' })) as { scripts: Record<string, string> }
  // npm runs these when a consumer installs the package (prepare too, for git and folder installs).
  for (const script of ['preinstall', 'install', 'postinstall', 'prepare']) assert.equal(manifest.scripts[script], undefined, `no ${script} script`)
  for (const file of ['dist/main.js', 'dist/client/client.js']) assert.doesNotMatch(execFileSync('tar', ['-xOzf', tarball, `package/${file}`], { encoding: 'utf8' }), /sourceMappingURL/)

  const consumer = join(dir, 'consumer')
  mkdirSync(consumer)
  writeFileSync(join(consumer, 'package.json'), '{ "name": "consumer", "version": "1.0.0", "private": true, "type": "module" }\n')
  const install = spawnSync('npm', ['install', '--ignore-scripts=false', tarball], { cwd: consumer, env, encoding: 'utf8', timeout: 300_000 })
  assert.equal(install.status, 0, install.stderr)
  assert.doesNotMatch(`${install.stdout}${install.stderr}`, /install-scripts|srvgate@[\d.]+ \(/, 'npm finds no install script to approve')
  const help = spawnSync(join(consumer, 'node_modules/.bin/srvgate'), ['--help'], { cwd: consumer, encoding: 'utf8', timeout: 20_000 })
  assert.equal(help.status, 0, help.stderr)
  assert.match(help.stdout, /Usage: srvgate <command>/)

  // What `import('srvgate/client')` loads: every ESM resolution (a hook) and every CommonJS module (require.cache).
  const log = join(dir, 'loaded.txt')
  const hooks = pathToFileURL(resolve('test/fixtures/record-loads.mjs')).href
  const program = `import { createRequire } from 'node:module'
const { createClient } = await import('srvgate/client')
const client = createClient({ resolvers: { r: { nameservers: ['127.0.0.1:1'] } }, services: { web: { discovery: { resolver: 'r', srv: '_web._tcp.example' } } } })
await client.close()
console.log(JSON.stringify(Object.keys(createRequire(import.meta.url).cache)))`
  const loaded = spawnSync(process.execPath, ['--import', `data:text/javascript,import { register } from 'node:module'; register(${JSON.stringify(hooks)})`, '--input-type=module', '-e', program], { cwd: consumer, env: { ...process.env, SRVGATE_LOADED_LOG: log }, encoding: 'utf8', timeout: 20_000 })
  assert.equal(loaded.status, 0, loaded.stderr)
  const packages = packagesOf([...JSON.parse(loaded.stdout) as string[], ...readFileSync(log, 'utf8').split('\n')])
  assert.ok(packages.includes('srvgate') && packages.includes('undici'), packages.join(' '))
  assert.deepEqual(packages.filter((name) => /^(fastify|@fastify\/|pino|prom-client|@sinclair\/typebox)/.test(name)), [], `the client loads no server side: ${packages.join(' ')}`)
  // The whole set, so a new package in the client's graph is seen (docs/CLIENT.md gives their sizes).
  assert.deepEqual(packages, ['ajv', 'dns2', 'fast-deep-equal', 'lru-cache', 'srvgate', 'undici', 'yaml'])
})
