/**
 * Node's http module, taken without an ES import. On Node 24 `import { x }
 * from 'node:http'` builds the module's namespace, which reads every export,
 * including the lazy getters for WebSocket, CloseEvent and MessageEvent; those
 * load Node's bundled undici (its 770 KB source string stays on the heap):
 * about 7 MB of RSS in every process, the primary included, for classes
 * srvgate never uses. process.getBuiltinModule hands back the CommonJS object
 * as fastify's own require('http') does, and leaves the getters unread.
 * test/unit/util/node-http.test.ts fails if a module in src/ value-imports
 * node:http again, or if loading the gateway loads Node's undici.
 * Type-only imports (`import type … from 'node:http'`) cost nothing and stay.
 */
export const nodeHttp: typeof import('node:http') = process.getBuiltinModule('node:http')
