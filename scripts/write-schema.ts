// Writes config/gateway.schema.json from src/config/schema.ts (TypeBox): for editors, and the schema
// src/config/validate.ts validates with.
// test/unit/config/load.test.ts ("config/gateway.schema.json … is the schema the loader uses") fails when the two differ.
import { writeFileSync } from 'node:fs'
import { gatewaySchema } from '../src/config/schema.js'

writeFileSync(new URL('../config/gateway.schema.json', import.meta.url), `${JSON.stringify(gatewaySchema, null, 2)}\n`)
console.log('wrote config/gateway.schema.json')
