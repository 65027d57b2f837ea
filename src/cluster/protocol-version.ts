/**
 * Raised whenever a message's shape or meaning changes (protocol.ts), the
 * configuration schema included: a worker compiles the document its primary
 * checked, defaults filled by the primary's schema (a test pins the schema's
 * hash to this number: test/unit/cluster/protocol-version.test.ts). A
 * worker says it in its hello; the primary refuses a worker that speaks
 * another version (a worker forked from files replaced on disk under a
 * running primary). Here, not in protocol.ts, so that reading it does not
 * load TypeBox.
 */
export const PROTOCOL_VERSION = 5

/** Ours start with this; prom-client's own cluster messages share the channel and do not. */
export const MESSAGE_PREFIX = 'srvgate:'
