/**
 * The README's "Commands" table is a contract scripts rely on: every exit code
 * it gives a command is produced by the real CLI, and the CLI gives no code the
 * table leaves out (issue 22, item 5). Each code has at least one scenario here.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ConsulLikeDnsServer, freePort } from '../helpers/dns-server.js'
import { srvgate } from '../helpers/cli.js'
import { SpawnedGateway } from '../helpers/spawn-gateway.js'
import { startDemo } from '../helpers/demo.js'

const WEB = '_web._prod.service.consul'

/** `srvgate NAME` → the exit codes its row documents, plus 2 (wrong usage), which the table gives every command. */
function documentedCodes (): Map<string, number[]> {
  const readme = readFileSync('README.md', 'utf8')
  const start = readme.indexOf('| command | does | exit codes |')
  assert.ok(start >= 0, 'README.md has a "| command | does | exit codes |" table')
  assert.match(readme.slice(start), /Every command takes `--help`; wrong usage exits 2/)
  const rows = readme.slice(start).split('\n').slice(2).filter((line) => line.startsWith('| `srvgate '))
  const codes = new Map<string, number[]>()
  for (const row of rows) {
    const name = /^\| `srvgate (\w+)/.exec(row)?.[1] as string
    const cell = row.split(/(?<!\\)\|/).at(-2) as string
    const numbers = [...cell.matchAll(/(?:^|,)\s*(\d+) /g)].map((match) => Number(match[1]))
    codes.set(name, [...new Set([...numbers, 2])].sort())
  }
  return codes
}

function tempFile (name: string, text: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'srvgate-exit-')), name)
  writeFileSync(path, text)
  return path
}

/** A port some other socket holds for the test's duration. */
async function busyPort (t: TestContext): Promise<number> {
  const busy = createServer()
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve))
  t.after(() => busy.close())
  return (busy.address() as { port: number }).port
}

type Scenario = { readonly name: string, readonly run: (t: TestContext) => Promise<number | null> }
const exitOf = async (args: string[]): Promise<number | null> => (await srvgate(args)).code

/** Every command, every code: how to make the real CLI exit with it. */
const SCENARIOS: Record<string, Record<number, Scenario[]>> = {
  run: {
    0: [{ name: 'started, then SIGTERM', run: async (t) => await (await SpawnedGateway.start(t, 'listen: { http: "127.0.0.1:${PORT}", admin: "127.0.0.1:${ADMIN_PORT}" }\nworkers: 1\n')).stop() }],
    1: [{ name: 'invalid file', run: async () => await exitOf(['run', '-c', tempFile('bad.yaml', 'listen: { http: nowhere }\n')]) }],
    2: [{ name: 'no -c', run: async () => await exitOf(['run']) }],
    3: [
      { name: 'listen.http in use', run: async (t) => await exitOf(['run', '-c', tempFile('busy.yaml', `listen: { http: "127.0.0.1:${await busyPort(t)}", admin: "127.0.0.1:${await freePort()}" }\nworkers: 1\n`)]) },
      { name: 'pid file naming a running process', run: async () => await exitOf(['run', '-c', tempFile('ok.yaml', `listen: { http: "127.0.0.1:${await freePort()}", admin: "127.0.0.1:${await freePort()}" }\n`), '--pid-file', tempFile('srvgate.pid', `${process.pid}\n`)]) }
    ]
  },
  check: {
    0: [{ name: 'the example file', run: async () => await exitOf(['check', '-c', 'config/gateway.yaml']) }],
    1: [{ name: 'invalid file', run: async () => await exitOf(['check', '-c', tempFile('bad.yaml', 'listen: { http: nowhere }\n')]) }],
    2: [{ name: 'unknown option', run: async () => await exitOf(['check', '--bogus']) }]
  },
  resolve: {
    0: [{ name: 'records', run: async (t) => await exitOf(['resolve', WEB, '--nameserver', (await dnsWith(t, [{ address: '127.0.0.1', port: 8080 }])).address]) }],
    1: [
      { name: 'NXDOMAIN', run: async (t) => await exitOf(['resolve', WEB, '--nameserver', (await dnsWith(t, [])).address]) },
      { name: 'invalid file', run: async () => await exitOf(['resolve', WEB, '-c', tempFile('bad.yaml', 'listen: { http: nowhere }\n')]) },
      { name: 'no resolver NAME in FILE (--resolver nope)', run: async () => await exitOf(['resolve', WEB, '-c', tempFile('ok.yaml', 'listen: { http: 127.0.0.1:8080 }\nresolvers: { consul: { nameservers: [127.0.0.1:8600] } }\n'), '--resolver', 'nope']) }
    ],
    2: [
      { name: '--type MX', run: async () => await exitOf(['resolve', WEB, '--type', 'MX']) },
      { name: '--resolver without -c', run: async () => await exitOf(['resolve', WEB, '--resolver', 'nope']) }
    ],
    3: [{ name: 'nothing answers', run: async () => await exitOf(['resolve', WEB, '--nameserver', `127.0.0.1:${await freePort()}`, '--timeout', '200ms']) }]
  },
  reload: {
    0: [{ name: 'applied', run: async (t) => await exitOf(['reload', '-c', (await SpawnedGateway.start(t, 'listen: { http: "127.0.0.1:${PORT}", admin: "127.0.0.1:${ADMIN_PORT}" }\nworkers: 1\n')).configPath]) }],
    1: [{
      name: 'refused',
      run: async (t) => {
        const gateway = await SpawnedGateway.start(t, 'listen: { http: "127.0.0.1:${PORT}", admin: "127.0.0.1:${ADMIN_PORT}" }\nworkers: 1\n')
        writeFileSync(gateway.configPath, `${readFileSync(gateway.configPath, 'utf8')}\nworkers: many\n`.replace('workers: 1\n', ''))
        return await exitOf(['reload', '-c', gateway.configPath])
      }
    }],
    2: [{ name: 'neither -c nor --admin', run: async () => await exitOf(['reload']) }],
    3: [{ name: 'nothing listens', run: async () => await exitOf(['reload', '--admin', `127.0.0.1:${await freePort()}`]) }]
  },
  demo: {
    0: [{
      name: 'started, then SIGTERM',
      run: async (t) => {
        const demo = await startDemo(t)
        const exited = new Promise<number | null>((resolve) => demo.process.once('exit', resolve))
        demo.process.kill('SIGTERM')
        return await exited
      }
    }],
    2: [{ name: '--port not a port', run: async () => await exitOf(['demo', '--port', 'eighty']) }],
    3: [{ name: '--port in use', run: async (t) => await exitOf(['demo', '--port', String(await busyPort(t)), '--admin-port', String(await freePort())]) }]
  }
}

async function dnsWith (t: TestContext, instances: Array<{ address: string, port: number }>): Promise<ConsulLikeDnsServer> {
  const dns = await ConsulLikeDnsServer.start(t)
  dns.setService(WEB, instances)
  return dns
}

test('the README\'s Commands table has a row for every command, and each row\'s codes are the ones the command\'s --help gives', async () => {
  const documented = documentedCodes()
  const help = await srvgate(['--help'])
  const commands = [...help.stdout.matchAll(/^ {2}(\w+) {2,}/gm)].map((match) => match[1] as string)
  assert.deepEqual([...documented.keys()].sort(), [...commands].sort(), 'one README row per command of srvgate --help')
  assert.deepEqual([...documented.keys()].sort(), Object.keys(SCENARIOS).sort(), 'a scenario table per command')
  for (const [name, codes] of documented) {
    const text = (await srvgate([name, '--help'])).stdout
    const paragraph = text.slice(text.indexOf('Exit codes:'))
    const inHelp = [...paragraph.matchAll(/[:,]\s+(\d+) /g)].map((match) => Number(match[1]))
    assert.deepEqual([...new Set(inHelp)].sort(), codes, `srvgate ${name} --help and the README disagree`)
  }
})

for (const [name, codes] of documentedCodes()) {
  test(`srvgate ${name}: every exit code the README documents (${codes.join(', ')}) is what the CLI does`, async (t) => {
    assert.deepEqual(Object.keys(SCENARIOS[name] ?? {}).map(Number).sort(), codes, 'a scenario for each documented code, and no code the README leaves out')
    for (const [code, scenarios] of Object.entries(SCENARIOS[name] ?? {})) {
      for (const scenario of scenarios) assert.equal(await scenario.run(t), Number(code), `srvgate ${name}: ${scenario.name}`)
    }
  })
}
