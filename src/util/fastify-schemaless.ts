import type { FastifyServerOptions } from 'fastify'

/**
 * Fastify options for an app whose routes declare no schema: neither srvgate
 * app does (public requests are proxied as bytes; admin answers are built by
 * hand; the configuration has its own checker, config/validate.ts). Without
 * these, fastify's constructor loads @fastify/ajv-compiler (ajv, ajv-formats)
 * and fast-json-stringify for compilers it never calls: about 3 MB of RSS in
 * every process, which the primary's budget (docs/BENCHMARKS.md, "the
 * primary's RSS") cannot spare. compilersFactory is fastify's documented
 * option (Server, `schemaController`).
 *
 * A route given a schema later fails at app.ready() with the message below,
 * not at its first request: test/unit/util/fastify-schemaless.test.ts.
 */
export const schemaless: Pick<FastifyServerOptions, 'schemaController'> = {
  schemaController: {
    compilersFactory: {
      buildValidator: () => refuseSchemas,
      buildSerializer: () => refuseSchemas
    }
  }
}

function refuseSchemas (): never {
  throw new Error('this fastify app is built schemaless (src/util/fastify-schemaless.ts): a route schema needs its compilers back')
}
