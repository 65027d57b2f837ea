import { boundAddress } from '../util/address.js'
import { systemClock, type Timer } from '../util/clock.js'
import { singleProcess, type Roles } from '../roles.js'
import { loadConfigText } from '../config/load.js'
import { DemoInstance } from './instances.js'
import { DemoRegistry } from './registry.js'

export type DemoOptions = {
  readonly port: number
  readonly adminPort: number
  /** Replace an instance every this many ms (0: no churn). */
  readonly churnEveryMs: number
  readonly logLevel: string
  readonly print: (line: string) => void
}

export type RunningDemo = { readonly stop: () => Promise<void>, readonly gateway: Roles }

const SERVICES: Record<string, { readonly env: string, readonly count: number }> = {
  '_web._prod.service.demo': { env: 'prod', count: 3 },
  '_web._staging.service.demo': { env: 'staging', count: 2 },
  '_web._pr-1.service.demo': { env: 'pr-1', count: 1 }
}

/**
 * `srvgate demo`: an SRV registry, demo instances in prod, staging and a
 * preview environment, and the gateway in front of them, all in this process
 * on loopback. With churn, instances keep being replaced on new ports while
 * the gateway follows them.
 */
export async function runDemo (options: DemoOptions): Promise<RunningDemo> {
  const registry = new DemoRegistry()
  await registry.start()
  const live = new Map<string, DemoInstance[]>()
  let serial = 0
  const launch = async (service: string, env: string): Promise<DemoInstance> => {
    const instance = new DemoInstance(env, `${env}-${++serial}`)
    await instance.start()
    registry.register(service, { address: '127.0.0.1', port: instance.port, node: instance.name })
    live.set(service, [...(live.get(service) ?? []), instance])
    return instance
  }
  for (const [service, { env, count }] of Object.entries(SERVICES)) {
    for (let index = 0; index < count; index++) await launch(service, env)
  }

  const document = {
    listen: { http: `127.0.0.1:${options.port}`, admin: `127.0.0.1:${options.adminPort}` },
    drain: { delay: '0s', timeout: '5s' },
    resolvers: { registry: { nameservers: [registry.address], ttl: { min: '500ms', max: '5s' }, timeout: '300ms' } },
    backends: {
      'web-prod': { discovery: { resolver: 'registry', srv: '_web._prod.service.demo' } },
      'web-staging': { discovery: { resolver: 'registry', srv: '_web._staging.service.demo' } }
    },
    frontends: [
      {
        name: 'preview',
        match: { host: '{env}.preview.localhost' },
        env: { pattern: '^pr-[0-9]{1,6}$' },
        backend: { template: 'web-{env}', discovery: { resolver: 'registry', srv: '_web._{env}.service.demo' } }
      },
      { name: 'staging-host', match: { host: 'staging.localhost' }, backend: 'web-staging' },
      { name: 'canary-header', match: { headers: { 'x-env': 'staging' } }, backend: 'web-staging' },
      { name: 'prod', match: {}, backend: 'web-prod' }
    ]
  }
  // Checked as a file's text is (JSON is YAML); the data plane compiles the checked document, as a cluster worker does.
  const gateway = await singleProcess(loadConfigText(JSON.stringify(document), {}), { logLevel: options.logLevel })
  try {
    await gateway.start()
    await listenOn(gateway.data.app, options.port, '--port')
    await listenOn(gateway.admin, options.adminPort, '--admin-port')
    gateway.control.setListening()
  } catch (error) {
    // All or nothing: what was started goes again before the error is reported.
    await gateway.close().catch(() => {})
    await Promise.all([...live.values()].flat().map(async (instance) => { await instance.stop() }))
    await registry.stop()
    throw error
  }
  const { port } = boundAddress(gateway.data.app.server.address(), { host: '127.0.0.1', port: options.port })
  const adminPort = boundAddress(gateway.admin.server.address(), { host: '127.0.0.1', port: options.adminPort }).port

  let churnTimer: Timer | undefined
  const retiring = new Set<DemoInstance>()
  let isStopping = false
  if (options.churnEveryMs > 0) {
    const churn = async (): Promise<void> => {
      const service = Math.random() < 0.7 ? '_web._prod.service.demo' : '_web._staging.service.demo'
      const instances = live.get(service) ?? []
      const old = instances[Math.floor(Math.random() * instances.length)]
      if (old === undefined || isStopping) return
      const next = await launch(service, old.env)
      options.print(`churn: ${old.name} (127.0.0.1:${old.port}) replaced by ${next.name} (127.0.0.1:${next.port})`)
      registry.deregister(service, old.name)
      live.set(service, (live.get(service) ?? []).filter((instance) => instance !== old))
      // Give the gateway a TTL to notice before the old process goes; in-flight requests finish.
      retiring.add(old)
      systemClock.setTimeout(() => { old.stop().finally(() => retiring.delete(old)) }, 1500)
    }
    const schedule = (): void => {
      churnTimer = systemClock.setTimeout(() => { churn().catch(() => {}).finally(() => { if (!isStopping) schedule() }) }, options.churnEveryMs)
    }
    schedule()
  }

  const base = `http://localhost:${port}`
  const tries: Array<[string, string]> = [
    [`curl ${base}/`, 'prod: requests spread over its instances'],
    [`curl http://staging.localhost:${port}/`, 'staging, chosen by host'],
    [`curl -H 'x-env: staging' ${base}/`, 'staging, chosen by header'],
    [`curl http://pr-1.preview.localhost:${port}/`, 'a preview environment, made on first use'],
    [`curl http://pr-2.preview.localhost:${port}/`, '503: pr-2 has no instance, and never gets another env\'s'],
    [`curl http://evil.preview.localhost:${port}/`, '404: not a valid env name, never reaches DNS']
  ]
  const width = Math.max(...tries.map(([command]) => command.length))
  options.print([
    '',
    `srvgate demo: 3 prod, 2 staging and 1 preview instance behind http://127.0.0.1:${port}`,
    `  SRV registry on ${registry.address}; instances follow it, TTL 0 (clamped to 500ms)`,
    `  See what srvgate's resolver sees: npx srvgate resolve _web._prod.service.demo --nameserver ${registry.address}`,
    '',
    'Try:',
    ...tries.map(([command, what]) => `  ${command.padEnd(width)}   # ${what}`),
    '',
    `Dashboard: http://127.0.0.1:${adminPort}/   metrics: http://127.0.0.1:${adminPort}/metrics`,
    options.churnEveryMs > 0 ? `Churn: an instance is replaced every ${options.churnEveryMs / 1000}s; watch the dashboard.` : 'Run with --churn to watch instances being replaced on new ports.',
    'Ctrl-C stops everything.',
    ''
  ].join('\n'))

  const stop = async (): Promise<void> => {
    isStopping = true
    churnTimer?.cancel()
    await gateway.close()
    await Promise.all([...[...live.values()].flat(), ...retiring].map(async (instance) => { await instance.stop() }))
    await registry.stop()
  }
  return { stop, gateway }
}

/** Listen, or say which option moves the port when it is taken. */
async function listenOn (app: Roles['admin'], port: number, option: string): Promise<void> {
  try {
    await app.listen({ host: '127.0.0.1', port })
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new Error(`port ${port} is already in use: choose another with ${option} PORT`, { cause: error })
    throw error
  }
}

