// Writes src/cluster/generated-message-checks.ts from src/cluster/protocol.ts (TypeBox): one check
// function per message type, compiled here with TypeCompiler.Code so that no process loads TypeBox
// to check the messages it receives. test/unit/cluster/message-checks.test.ts fails when the file
// is not what this script writes from the current schemas.
import { writeFileSync } from 'node:fs'
import { messageChecksSource } from './message-checks-source.js'

writeFileSync(new URL('../src/cluster/generated-message-checks.ts', import.meta.url), messageChecksSource())
console.log('wrote src/cluster/generated-message-checks.ts')
