import { X509Certificate, createPrivateKey } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { createSecureContext, type SecureContext } from 'node:tls'
import type { TlsConfig } from '../config/types.js'
import { ConfigError, ErrorCode, type ConfigIssue } from '../errors.js'
import { dateAt } from '../util/clock.js'

/** A certificate expiring sooner than this is reported by `check` and at every load. */
export const EXPIRY_WARNING_MS = 14 * 24 * 3600 * 1000

/** A certificate the control plane obtained from an ACME CA (acme/), as PEM text: how it reaches every data plane. */
export type IssuedPem = { readonly cert: string, readonly key: string }

/** One certificate as srvgate serves it. */
export type ServedCertificate = {
  /** tls.certificates (a file), or tls.acme (obtained by srvgate; certPath and keyPath are empty). */
  readonly source: 'file' | 'acme'
  readonly certPath: string
  readonly keyPath: string
  /** Lower-case DNS names of its subjectAltName (`*.example.com` for a wildcard). */
  readonly names: readonly string[]
  readonly serial: string
  readonly notAfterMs: number
  readonly context: SecureContext
  /** The PEM bytes, for the listener's own context (clients without SNI). */
  readonly cert: Buffer
  readonly key: Buffer
}

/**
 * The certificates of `tls.certificates`, read and checked together, and the
 * choice among them by SNI: the exact name first, then the wildcard of the
 * parent name (RFC 6125: a wildcard stands for one label), then `default`.
 * Immutable: a reload reads the files again into a new store, and the old one
 * keeps serving if anything is wrong with the new files.
 */
export class CertificateStore {
  readonly certificates: readonly ServedCertificate[]
  readonly default: ServedCertificate | undefined
  /** Every problem short of an error: certificates that expire soon. */
  readonly warnings: readonly ConfigIssue[]
  readonly #byName: ReadonlyMap<string, ServedCertificate>

  /** The files' certificates alone (withIssued adds ACME ones after them). */
  readonly #files: readonly ServedCertificate[]
  readonly #minVersion: TlsConfig['minVersion']
  readonly #defaultName: string | undefined

  private constructor (files: ServedCertificate[], issued: ServedCertificate[], defaultCertificate: ServedCertificate | undefined, warnings: ConfigIssue[], minVersion: TlsConfig['minVersion'], defaultName: string | undefined) {
    this.#files = files
    this.#minVersion = minVersion
    this.#defaultName = defaultName
    const certificates = [...files, ...issued]
    this.certificates = certificates
    this.default = defaultCertificate
    this.warnings = warnings
    const byName = new Map<string, ServedCertificate>()
    // The first certificate listed for a name wins, as in the file; a file wins over an ACME certificate.
    for (const certificate of certificates) for (const name of certificate.names) if (!byName.has(name)) byName.set(name, certificate)
    this.#byName = byName
  }

  /** Read and check every file; all problems at once, each with the path of its field (ConfigError). */
  static async load (tls: TlsConfig, nowMs: number): Promise<CertificateStore> {
    const issues: ConfigIssue[] = []
    const warnings: ConfigIssue[] = []
    const loaded = await Promise.all(tls.certificates.map(async ({ certPath, keyPath }, index): Promise<ServedCertificate | undefined> => {
      const path = `tls.certificates[${index}]`
      const [cert, key] = await Promise.all([readPem(certPath, `${path}.cert`, issues), readPem(keyPath, `${path}.key`, issues)])
      if (cert === undefined || key === undefined) return undefined
      let x509: X509Certificate
      try {
        x509 = new X509Certificate(cert)
      } catch (error) {
        issues.push({ path: `${path}.cert`, message: `${certPath} is not a PEM certificate (${(error as Error).message})` })
        return undefined
      }
      try {
        if (!x509.checkPrivateKey(createPrivateKey(key))) {
          issues.push({ path: `${path}.key`, message: `${keyPath} is not the key of ${certPath}` })
          return undefined
        }
      } catch (error) {
        issues.push({ path: `${path}.key`, message: `${keyPath} is not a PEM private key (${(error as Error).message})` })
        return undefined
      }
      const names = dnsNames(x509.subjectAltName)
      const notAfterMs = Date.parse(x509.validTo)
      const notBeforeMs = Date.parse(x509.validFrom)
      if (names.length === 0) issues.push({ path: `${path}.cert`, message: `${certPath} carries no DNS name in its subjectAltName` })
      if (notAfterMs <= nowMs) issues.push({ path: `${path}.cert`, message: `${certPath} expired on ${dateAt(notAfterMs).toISOString()}` })
      else if (notBeforeMs > nowMs) issues.push({ path: `${path}.cert`, message: `${certPath} is not valid before ${dateAt(notBeforeMs).toISOString()}` })
      else if (notAfterMs - nowMs < EXPIRY_WARNING_MS) warnings.push({ path: `${path}.cert`, message: `${certPath} expires on ${dateAt(notAfterMs).toISOString()}, in ${Math.ceil((notAfterMs - nowMs) / 86_400_000)} day(s)` })
      let context: SecureContext
      try {
        context = createSecureContext({ cert, key, minVersion: tls.minVersion })
      } catch (error) {
        issues.push({ path: `${path}.cert`, message: `${certPath}: ${(error as Error).message}` })
        return undefined
      }
      return { source: 'file', certPath, keyPath, names, serial: x509.serialNumber, notAfterMs, context, cert, key }
    }))
    const certificates = loaded.filter((certificate): certificate is ServedCertificate => certificate !== undefined)
    let defaultCertificate: ServedCertificate | undefined
    if (tls.defaultName !== undefined && issues.length === 0) {
      defaultCertificate = certificates.find((certificate) => certificate.names.includes(tls.defaultName as string)) ??
        certificates.find((certificate) => matchesWildcard(certificate.names, tls.defaultName as string))
      // A name tls.acme obtains is served as the default once its certificate is there.
      if (defaultCertificate === undefined && tls.acme?.names.includes(tls.defaultName) !== true) issues.push({ path: 'tls.default', message: `no certificate carries the name "${tls.defaultName}"` })
    }
    if (issues.length > 0) throw new ConfigError(ErrorCode.CONFIG_INVALID, issues)
    return new CertificateStore(certificates, [], defaultCertificate, warnings, tls.minVersion, tls.defaultName)
  }

  /**
   * The same files, with `issued` (the ACME certificates the control plane
   * holds now) after them: a file for a name wins. `known` keeps what was
   * parsed before (by its PEM text), so a new set costs only its new entries.
   */
  withIssued (issued: readonly IssuedPem[], known: Map<string, ServedCertificate> = new Map()): CertificateStore {
    const served: ServedCertificate[] = []
    for (const pem of issued) {
      let certificate = known.get(pem.cert)
      if (certificate === undefined) {
        // The control plane checked it before sending: one that does not parse here is left out, never fatal.
        certificate = issuedCertificate(pem, this.#minVersion)
        if (certificate !== undefined) known.set(pem.cert, certificate)
      }
      if (certificate !== undefined) served.push(certificate)
    }
    const defaultName = this.#defaultName
    const defaultCertificate = this.default?.source === 'file' ? this.default : undefined
    const fallback = defaultName === undefined ? undefined : served.find((certificate) => carriesName(certificate.names, defaultName))
    return new CertificateStore([...this.#files], served, defaultCertificate ?? fallback, [...this.warnings], this.#minVersion, defaultName)
  }

  /** A certificate carries the name itself (exact, or the wildcard of its parent): the default does not count. */
  carries (servername: string): boolean {
    const name = servername.toLowerCase().replace(/\.$/, '')
    if (this.#byName.has(name)) return true
    const dot = name.indexOf('.')
    return dot > 0 && this.#byName.has(`*${name.slice(dot)}`)
  }

  /** The certificate for a client's SNI name; undefined: none, and no default (the handshake is refused). */
  select (servername: string): ServedCertificate | undefined {
    const name = servername.toLowerCase().replace(/\.$/, '')
    const exact = this.#byName.get(name)
    if (exact !== undefined) return exact
    const dot = name.indexOf('.')
    const wildcard = dot > 0 ? this.#byName.get(`*${name.slice(dot)}`) : undefined
    return wildcard ?? this.default
  }
}

/** An ACME certificate as served; undefined when its PEM does not parse or its key does not match. */
export function issuedCertificate (pem: IssuedPem, minVersion: TlsConfig['minVersion']): ServedCertificate | undefined {
  try {
    const x509 = new X509Certificate(pem.cert)
    if (!x509.checkPrivateKey(createPrivateKey(pem.key))) return undefined
    const cert = Buffer.from(pem.cert)
    const key = Buffer.from(pem.key)
    const context = createSecureContext({ cert, key, minVersion })
    return { source: 'acme', certPath: '', keyPath: '', names: dnsNames(x509.subjectAltName), serial: x509.serialNumber, notAfterMs: Date.parse(x509.validTo), context, cert, key }
  } catch {
    return undefined
  }
}

/** A context with no certificate: the handshake ends with a handshake_failure alert, never someone else's certificate. */
export const REFUSING_CONTEXT: SecureContext = createSecureContext({})

async function readPem (path: string, field: string, issues: ConfigIssue[]): Promise<Buffer | undefined> {
  try {
    return await readFile(path)
  } catch (error) {
    issues.push({ path: field, message: `cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}` })
    return undefined
  }
}

/** `DNS:a.example.com, DNS:*.b.example.com, IP Address:10.0.0.1` → the DNS names, lower-case. */
function dnsNames (subjectAltName: string | undefined): string[] {
  if (subjectAltName === undefined) return []
  return subjectAltName.split(',').map((entry) => entry.trim()).filter((entry) => entry.startsWith('DNS:')).map((entry) => entry.slice(4).toLowerCase())
}

/** True when a certificate with `names` may answer for `host` (lower case, no port): the name itself, or the wildcard of its parent. */
export function carriesName (names: readonly string[], host: string): boolean {
  return names.includes(host) || matchesWildcard(names, host)
}

function matchesWildcard (names: readonly string[], name: string): boolean {
  const dot = name.indexOf('.')
  return dot > 0 && names.includes(`*${name.slice(dot)}`)
}
