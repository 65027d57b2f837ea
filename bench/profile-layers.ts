/**
 * Where a proxied request's CPU goes, layer by layer, from a V8 CPU profile
 * of the gateway (BENCH_CPU_PROF=DIR npm run bench -- proxy). Each sample's
 * time goes to the nearest frame, from the leaf up, that belongs to a known
 * layer; idle time is left out, so the shares add up to the busy CPU.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'

type ProfileNode = { id: number, callFrame: { functionName: string, url: string }, children?: number[] }
type Profile = { nodes: ProfileNode[], samples: number[], timeDeltas: number[] }

const LAYERS: Array<[string, (url: string, name: string) => boolean]> = [
  ['srvgate request and attempts (failover, body, answer writing)', (url) => /\/dist\/proxy\/(proxy-request|attempt|response-writer|upstream-pools|replayable-body|body-buffer|interim-continue|client-gone|upload-slots|retry-policy)/.test(url)],
  ['srvgate header rewriting', (url) => url.includes('/dist/proxy/headers')],
  ['srvgate routing and instance choice', (url) => /\/dist\/(proxy\/route-request|routing\/|upstream\/|balance\/|health\/)/.test(url)],
  ['logging (access log, pino)', (url) => /\/dist\/(proxy\/(access-log|logged-query)|log\/|util\/line-batch)/.test(url) || url.includes('pino') || url.includes('sonic-boom')],
  ['metrics (prom-client)', (url) => url.includes('/dist/admin/metrics') || url.includes('prom-client')],
  ['srvgate plugin hooks (ids, records, request end)', (url) => /\/dist\/(proxy\/(plugin|request-end|reply-error|own-answers)|edge\/|data-plane\/)/.test(url)],
  ['fastify (router, hooks, reply)', (url) => /\/(fastify|find-my-way|avvio)\//.test(url)],
  ['undici (client, parser)', (url) => url.includes('undici')],
  ['node http (parsing, ServerResponse)', (url) => url.includes('node:_http') || url.includes('node:internal/http')],
  ['node streams', (url) => url.includes('node:internal/streams') || url.includes('node:stream')],
  ['sockets (reads and writes)', (url, name) => url.includes('node:net') || url.includes('stream_base') || ['writev', 'writeLatin1String', 'writeUtf8String', 'writeBuffer'].includes(name)]
]

export function profileLayers (dir: string): Array<[string, number]> | undefined {
  const files = readdirSync(dir).filter((name) => name.endsWith('.cpuprofile')).map((name) => join(dir, name))
  const newest = files.sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0]
  if (newest === undefined) return undefined
  const profile = JSON.parse(readFileSync(newest, 'utf8')) as Profile
  const byId = new Map(profile.nodes.map((node) => [node.id, node]))
  const parents = new Map<number, number>()
  for (const node of profile.nodes) for (const child of node.children ?? []) parents.set(child, node.id)
  const shares = new Map<string, number>()
  let busy = 0
  profile.samples.forEach((id, index) => {
    const time = profile.timeDeltas[index] ?? 0
    const leaf = byId.get(id)
    if (leaf === undefined || leaf.callFrame.functionName === '(idle)') return
    busy += time
    let layer = leaf.callFrame.functionName === '(garbage collector)' ? 'garbage collection' : undefined
    for (let current: number | undefined = id; layer === undefined && current !== undefined; current = parents.get(current)) {
      const frame = (byId.get(current) as ProfileNode).callFrame
      layer = LAYERS.find(([, matches]) => matches(frame.url, frame.functionName))?.[0]
    }
    layer ??= 'other (node internals, promises, timers)'
    shares.set(layer, (shares.get(layer) ?? 0) + time)
  })
  return [...shares].map(([name, time]): [string, number] => [name, time / busy]).sort((a, b) => b[1] - a[1])
}
