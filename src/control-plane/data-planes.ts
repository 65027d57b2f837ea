import type { DataPlaneStats } from '../data-plane/stats.js'
import type { Instance } from '../discovery/instance-set.js'
import type { RoutingState } from '../proxy/route-request.js'
import type { DiscoverySnapshot } from '../discovery/watcher.js'
import type { HealthFact } from '../upstream/backend.js'
import type { ControlBackend } from '../upstream/control-backend.js'
import type { ChallengeSet } from '../tls/acme-answers.js'
import type { IssuedPem } from '../tls/certificates.js'
import type { GatewayDocument } from '../config/schema.js'

/** The control plane's answers to a data plane's ACME questions. */
export type AcmeAnswerer = {
  /** true once a certificate for `name` is served (published before the answer). */
  readonly certificate: (name: string) => Promise<boolean>
  readonly challenge: (type: 'http-01' | 'tls-alpn-01', key: string) => Promise<{ readonly keyAuthorization?: string, readonly cert?: string, readonly key?: string } | undefined>
}

export type WorkersStatus = { readonly configured: number, readonly running: number, readonly replaced: number, readonly pids: readonly number[] }

/**
 * What the control plane asks of the data planes that serve its
 * configuration: the cluster's workers (cluster/worker-pool.ts), or the one
 * data plane of the same process (cluster/in-process.ts). A reload is
 * two-phase: every data plane prepares the new generation beside the old
 * one, then all commit, or all abort.
 */
export type DataPlanes = {
  /** Resolves when every data plane has the generation ready; rejects (after aborting it everywhere) otherwise. */
  readonly prepare: (generation: number, document: GatewayDocument, state: RoutingState<ControlBackend>) => Promise<void>
  readonly commit: (generation: number) => void
  /** A backend's snapshot changed (set, status, staleness). */
  readonly discoveryChanged: (generation: number, backend: string, snapshot: DiscoverySnapshot) => void
  /** An instance was ejected or crossed an active check's rise or fall. */
  readonly healthChanged: (generation: number, backend: string, health: HealthFact) => void
  /** Instances left a backend's set: pools no backend needs any more can close. */
  readonly setChanged: (removed: readonly Instance[]) => void
  /** The HTTPS listeners' session ticket key (at start, and at each rotation): every data plane uses the same. */
  readonly sessionTicketKey: (key: Buffer) => void
  /** The ACME challenges under way; resolves once every serving data plane answers them (rejects after a timeout). */
  readonly acmeChallenges: (set: ChallengeSet) => Promise<void>
  /** Every certificate obtained by tls.acme (at start, and at each change): each data plane serves them. */
  readonly issuedCertificates: (certificates: readonly IssuedPem[]) => void
  /** Who answers a data plane's questions about ACME: a certificate for a handshake's name (onDemand), a challenge it does not hold (shared storage). */
  readonly answerAcme: (answerer: AcmeAnswerer) => void
  /** At least one data plane serves traffic (readiness). */
  readonly isServing: () => boolean
  /** Other processes' figures, for /metrics and /admin/state; undefined: this process's own metrics count everything. */
  readonly stats?: () => Promise<DataPlaneStats[]>
  /** With worker processes: how many are configured, run, and were replaced. */
  readonly workers?: () => WorkersStatus
}
