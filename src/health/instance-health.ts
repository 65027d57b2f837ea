/**
 * What is known of one instance's health, keyed by `address:port` so it
 * survives refreshes. Failure memory is timestamps compared on read, never
 * a timer per failure.
 */
export class InstanceHealth {
  readonly key: string
  /** Requests sent to this instance and not yet finished. */
  inFlight = 0
  consecutiveFailures = 0
  /** Clock time until which the instance is ejected; 0: not ejected. */
  ejectedUntilMs = 0
  /** Ejections in a row (decays while healthy); the ejection time grows with it. */
  ejections = 0
  /** Set by the active checker; instances start healthy (Consul has already dropped critical ones). */
  isFailingActiveCheck = false
  /** Active checks passed / failed in a row, for rise and fall. */
  checksPassed = 0
  checksFailed = 0
  /** When it appeared in DNS after the backend's first answer; -Infinity: it was there from the start (slow start). */
  addedMs = -Infinity
  /** When it last passed its active checks again after failing them (slow start). */
  recoveredMs = -Infinity

  constructor (key: string) { this.key = key }

  isEjected (nowMs: number): boolean { return nowMs < this.ejectedUntilMs }

  /** When it last became usable: appeared, came back from an ejection or from a failed check (slow start). */
  get warmFromMs (): number {
    return Math.max(this.addedMs, this.recoveredMs, this.ejectedUntilMs > 0 ? this.ejectedUntilMs : -Infinity)
  }
}

/** Health records for one backend's instances. */
export class HealthTable {
  readonly #records = new Map<string, InstanceHealth>()

  get (key: string): InstanceHealth {
    let record = this.#records.get(key)
    if (record === undefined) {
      record = new InstanceHealth(key)
      this.#records.set(key, record)
    }
    return record
  }

  peek (key: string): InstanceHealth | undefined { return this.#records.get(key) }

  /** Forget instances that left DNS and have nothing in flight (keeps the table bounded by DNS). */
  purge (isKnown: (key: string) => boolean): void {
    for (const [key, record] of this.#records) {
      if (!isKnown(key) && record.inFlight === 0) this.#records.delete(key)
    }
  }

  values (): IterableIterator<InstanceHealth> { return this.#records.values() }
}
