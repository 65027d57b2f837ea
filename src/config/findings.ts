import type { ConfigIssue } from '../errors.js'

/**
 * What compiling finds wrong (issues: the file is refused) or suspicious
 * (warnings: it loads), in document order. Each section's compile function
 * adds to one Findings instead of throwing, so one pass reports everything.
 */
export type Findings = { readonly issues: ConfigIssue[], readonly warnings: ConfigIssue[] }
