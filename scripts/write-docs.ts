// npm run docs: rewrite the generated parts of docs/CONFIG.md (the configuration reference).
import { readFileSync, writeFileSync } from 'node:fs'
import { configReference, END, START } from './config-reference.js'

const FILE = 'docs/CONFIG.md'
const text = readFileSync(FILE, 'utf8')
const start = text.indexOf(START)
const end = text.indexOf(END)
if (start < 0 || end < 0) throw new Error(`${FILE} has no config-reference markers`)
writeFileSync(FILE, text.slice(0, start) + configReference() + text.slice(end + END.length))
console.log(`${FILE}: configuration reference rewritten`)
