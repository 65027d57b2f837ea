import { randomBytes } from 'node:crypto'
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { AcmeConfig } from '../config/types.js'
import type { Clock } from '../util/clock.js'

/** One certificate as kept: the chain (leaf first) and its private key, PEM. */
export type StoredCertificate = { readonly cert: string, readonly key: string }

/** A challenge as replicas share it: an http-01 token's answer, or a tls-alpn-01 certificate for a name. */
export type SharedChallenge =
  | { readonly type: 'http-01', readonly token: string, readonly keyAuthorization: string }
  | { readonly type: 'tls-alpn-01', readonly name: string, readonly cert: string, readonly key: string }

/** The right to order a name, held by one replica at a time (storage.redis); released after the order. */
export type Lease = { readonly release: () => Promise<void> }

/**
 * Where tls.acme keeps its account key and certificates: a folder
 * (DirStorage, one machine) or Redis (RedisStorage, replicas sharing them).
 */
export interface AcmeStorage {
  /** Where, for messages. */
  readonly path: string
  readonly accountKey: (create: () => Promise<string>) => Promise<string>
  readonly load: (name: string) => Promise<StoredCertificate | undefined>
  readonly save: (name: string, certificate: StoredCertificate) => Promise<void>
  /** The lease to order `name`; undefined while another replica holds it. */
  readonly lock: (name: string) => Promise<Lease | undefined>
  /** Challenges under way, for the replica the CA's validation reaches (storage.redis; a folder has no other replica). */
  readonly putChallenge: (challenge: SharedChallenge) => Promise<void>
  readonly removeChallenge: (challenge: SharedChallenge) => Promise<void>
  readonly findChallenge: (type: SharedChallenge['type'], key: string) => Promise<SharedChallenge | undefined>
  /** Another replica saved a certificate for this name (storage.redis). */
  readonly onSaved: (listener: (name: string) => void) => void
  readonly close: () => Promise<void>
}

const LOCAL_LEASE: Lease = { release: async () => {} }

/**
 * tls.acme.storage.dir: the account key and one certificate per name, in a
 * folder of their own per directory URL (a staging CA's certificates are
 * never served as production ones; Caddy lays its storage out the same way).
 * Private keys are mode 0600 in folders of mode 0700; every file is written
 * whole to a temporary name, flushed, then renamed over the old one, so a
 * crash leaves the old file or the new one, never half of either.
 */
export class DirStorage implements AcmeStorage {
  readonly #base: string

  constructor (dir: string, directoryUrl: string) {
    this.#base = join(dir, folderOf(directoryUrl))
  }

  /** Where this directory's files are (for messages). */
  get path (): string { return this.#base }

  /** One process orders: the lease is always there. */
  readonly lock = async (): Promise<Lease> => LOCAL_LEASE
  readonly putChallenge = async (): Promise<void> => {}
  readonly removeChallenge = async (): Promise<void> => {}
  readonly findChallenge = async (): Promise<undefined> => undefined
  readonly onSaved = (): void => {}
  readonly close = async (): Promise<void> => {}

  /** The account's private key, PEM; made by `create` and kept the first time. */
  readonly accountKey = async (create: () => Promise<string>): Promise<string> => {
    const path = join(this.#base, 'account.key')
    const kept = await readIfThere(path)
    if (kept !== undefined) return kept
    const key = await create()
    await writeAtomically(this.#base, 'account.key', key, 0o600)
    return key
  }

  /** The certificate kept for `name`; undefined when there is none (or only half of one). */
  readonly load = async (name: string): Promise<StoredCertificate | undefined> => {
    const folder = join(this.#base, 'certificates', name)
    const [cert, key] = await Promise.all([readIfThere(join(folder, 'cert.pem')), readIfThere(join(folder, 'key.pem'))])
    return cert === undefined || key === undefined ? undefined : { cert, key }
  }

  /** Keep `certificate` for `name`: the key first, so a cert file never stands beside another cert's key for long. */
  readonly save = async (name: string, certificate: StoredCertificate): Promise<void> => {
    const folder = join(this.#base, 'certificates', name)
    await writeAtomically(folder, 'key.pem', certificate.key, 0o600)
    await writeAtomically(folder, 'cert.pem', certificate.cert, 0o644)
  }
}

/** `https://acme-v02.api.letsencrypt.org/directory` → `acme-v02.api.letsencrypt.org-directory`: a file name, one per URL. */
export function folderOf (directoryUrl: string): string {
  const url = new URL(directoryUrl)
  return `${url.host}${url.pathname}`.replace(/[^A-Za-z0-9.-]+/g, '-').replace(/^-+|-+$/g, '')
}

async function readIfThere (path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw error
  }
}

async function writeAtomically (folder: string, name: string, text: string, mode: number): Promise<void> {
  await mkdir(folder, { recursive: true, mode: 0o700 })
  const temporary = join(folder, `.${name}.${randomBytes(6).toString('hex')}.tmp`)
  try {
    const handle = await open(temporary, 'wx', mode)
    try {
      await handle.writeFile(text)
      await handle.sync()
    } finally {
      await handle.close()
    }
    await rename(temporary, join(folder, name))
  } catch (error) {
    await rm(temporary, { force: true })
    throw error
  }
}

/** The storage tls.acme.storage names; Redis's client is loaded only when it is used. */
export async function openStorage (config: AcmeConfig, deps: { readonly clock: Clock, readonly storageReachable: (isUp: boolean) => void }): Promise<AcmeStorage> {
  const storage = config.storage
  if (storage.kind === 'dir') return new DirStorage(storage.dir, config.directoryUrl)
  const { RedisStorage } = await import('./redis-storage.js')
  return new RedisStorage(storage.url, storage.prefix, config.directoryUrl, deps.clock, { reachable: deps.storageReachable })
}
