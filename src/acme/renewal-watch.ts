import type { Log } from '../log/process-log.js'
import { dateAt, type Clock } from '../util/clock.js'
import { systemRandom } from '../util/random.js'
import type { AriClient } from './ari.js'
import type { Held, NameState } from './name-state.js'

/** renewalInfo that could not be asked is asked again after this. */
const ARI_RETRY_MS = 3_600_000

export type RenewalWatchDeps = {
  readonly clock: Clock
  readonly log: Log
  /** The CA's renewalInfo client (loaded at the first certificate held). */
  readonly ari: () => Promise<AriClient>
  /** `held` is still the certificate of a name managed here, and nothing has stopped. */
  readonly isCurrent: (state: NameState, held: Held) => boolean
  /** The renewal moved to a new moment in the CA's window: the schedule follows it. */
  readonly moved: (state: NameState) => void
}

/**
 * ARI (RFC 9773): the CA's renewal window for the certificate held, asked
 * now and again at its Retry-After. A window moves the renewal to a moment
 * picked in it (earlier than renewBefore when the CA must revoke, say);
 * none (the CA offers no renewalInfo) leaves renewBefore. A CA that cannot
 * be asked is asked again within the hour, and costs nothing else.
 */
export class RenewalWatch {
  readonly #deps: RenewalWatchDeps

  constructor (deps: RenewalWatchDeps) { this.#deps = deps }

  /** Ask for the window of the certificate `state` holds (a timer before asks for the one held before: cancelled). */
  watch (state: NameState): void {
    state.ariTimer?.cancel()
    state.ariTimer = undefined
    const held = state.held
    if (held === undefined || !this.#deps.isCurrent(state, held)) return
    const { clock, log } = this.#deps
    const again = (delayMs: number): void => {
      if (!this.#deps.isCurrent(state, held)) return
      state.ariTimer = clock.setTimeout(() => { this.watch(state) }, delayMs, { unref: true })
    }
    this.#ask(state, held).then((delayMs) => { if (delayMs !== undefined) again(delayMs) }, (error: unknown) => {
      log.debug({ name: state.name, err: error }, 'acme: renewalInfo (ARI) could not be asked; asked again within the hour')
      again(ARI_RETRY_MS)
    })
  }

  /** One renewalInfo answer applied; resolves with when to ask again (undefined: the CA has no renewalInfo). */
  async #ask (state: NameState, held: Held): Promise<number | undefined> {
    const { clock, log } = this.#deps
    const info = await (await this.#deps.ari()).renewalInfo(held.cert, clock.wallNow())
    if (info === undefined || !this.#deps.isCurrent(state, held)) return undefined
    const { window } = info
    const previous = state.renewal?.window
    // A window that ended before this certificate began, or the very window its renewal followed,
    // is not about it (a CA answering an older one's, or a bug): followed, it would order again and again.
    const followed = state.followed
    if (window.endMs < held.notBeforeMs || (followed?.startMs === window.startMs && followed.endMs === window.endMs)) {
      log.warn({ name: state.name, windowEnd: dateAt(window.endMs).toISOString(), notBefore: dateAt(held.notBeforeMs).toISOString() }, 'acme: the CA\'s renewal window (ARI) is not about this certificate (it ended before it began, or the last renewal followed it); renewBefore stays in charge')
    } else if (previous?.startMs !== window.startMs || previous.endMs !== window.endMs) {
      const { pickRenewalTime } = await import('./ari.js')
      // Never past notAfter less a tenth of the lifetime (at most a day): a window reaching beyond it would let the certificate lapse.
      const latestMs = held.notAfterMs - Math.min(86_400_000, (held.notAfterMs - held.notBeforeMs) / 10)
      state.renewal = { window, atMs: Math.min(latestMs, pickRenewalTime(window, clock.wallNow(), systemRandom.next())) }
      log.info({ name: state.name, windowStart: dateAt(window.startMs).toISOString(), windowEnd: dateAt(window.endMs).toISOString(), renewAt: dateAt(state.renewal.atMs).toISOString() }, 'acme: the CA\'s renewal window (ARI)')
      this.#deps.moved(state)
    }
    return info.askAgainMs
  }
}
