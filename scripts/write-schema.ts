// Writes config/gateway.schema.json from src/config/schema.ts (TypeBox), for editors, and
// src/config/generated-validate.ts, the validator src/config/validate.ts runs (ajv's standalone code).
// test/unit/config/load.test.ts fails when either differs from what this writes.
import { writeFileSync } from 'node:fs'
import { gatewaySchema } from '../src/config/schema.js'
import { validatorSource } from './validator-source.js'

const published = JSON.parse(JSON.stringify(gatewaySchema)) as object
writeFileSync(new URL('../config/gateway.schema.json', import.meta.url), `${JSON.stringify(published, null, 2)}\n`)
console.log('wrote config/gateway.schema.json')
writeFileSync(new URL('../src/config/generated-validate.ts', import.meta.url), validatorSource(published))
console.log('wrote src/config/generated-validate.ts')
