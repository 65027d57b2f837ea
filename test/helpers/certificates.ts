/**
 * A test certificate authority made with Debian's openssl: `openssl ca`
 * issues leaf certificates with any subjectAltName and any validity window
 * (an expired one included), so TLS is tested with real X.509 files.
 */
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TestContext } from 'node:test'

export type Issued = { readonly cert: string, readonly key: string, readonly serial: string }

function openssl (args: string[], cwd: string): string {
  const result = spawnSync('openssl', args, { cwd, encoding: 'utf8' })
  if (result.status !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${result.stderr}`)
  return result.stdout
}

/** `20261130120000Z`, what `openssl ca -startdate/-enddate` takes. */
function asn1Time (at: Date): string {
  return at.toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z'
}

export class TestCa {
  readonly dir: string
  readonly caPath: string
  #next = 1

  private constructor (dir: string) {
    this.dir = dir
    this.caPath = join(dir, 'ca.pem')
  }

  static create (t: TestContext): TestCa {
    const dir = mkdtempSync(join(tmpdir(), 'srvgate-ca-'))
    t.after(() => { rmSync(dir, { recursive: true, force: true }) })
    mkdirSync(join(dir, 'issued'))
    writeFileSync(join(dir, 'index.txt'), '')
    writeFileSync(join(dir, 'serial'), '1000\n')
    writeFileSync(join(dir, 'ca.cnf'), `[ ca ]
default_ca = test_ca
[ test_ca ]
dir = ${dir}
database = ${dir}/index.txt
new_certs_dir = ${dir}/issued
certificate = ${dir}/ca.pem
private_key = ${dir}/ca.key
serial = ${dir}/serial
default_md = sha256
policy = any_name
unique_subject = no
email_in_dn = no
[ any_name ]
commonName = supplied
`)
    openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '30', '-subj', '/CN=srvgate test CA'], dir)
    return new TestCa(dir)
  }

  /** A leaf for `names` (DNS SANs), valid from `from` to `until` (default: an hour ago to 30 days on). */
  issue (names: readonly string[], options: { from?: Date, until?: Date } = {}): Issued {
    const id = `leaf-${this.#next++}`
    const key = join(this.dir, `${id}.key`)
    const csr = join(this.dir, `${id}.csr`)
    const cert = join(this.dir, `${id}.pem`)
    const ext = join(this.dir, `${id}.ext`)
    writeFileSync(ext, `[ leaf ]\nsubjectAltName = ${names.map((name) => `DNS:${name}`).join(',')}\nextendedKeyUsage = serverAuth\n`)
    openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', csr, '-subj', `/CN=${names[0] ?? 'leaf'}`], this.dir)
    const from = options.from ?? new Date(Date.now() - 3600_000)
    const until = options.until ?? new Date(Date.now() + 30 * 86_400_000)
    openssl(['ca', '-config', 'ca.cnf', '-batch', '-notext', '-in', csr, '-out', cert, '-extfile', ext, '-extensions', 'leaf', '-startdate', asn1Time(from), '-enddate', asn1Time(until)], this.dir)
    const serial = openssl(['x509', '-in', cert, '-noout', '-serial'], this.dir).trim().replace(/^serial=/, '')
    return { cert, key, serial }
  }

  get caPem (): string { return readFileSync(this.caPath, 'utf8') }
}
