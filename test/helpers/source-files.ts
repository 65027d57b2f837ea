import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'

/** Every .ts file under dir, for the tests that read src/ as text (import rules, one door per library). */
export function sourceFiles (dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? sourceFiles(path) : path.endsWith('.ts') ? [path] : []
  })
}

/** `import … from 'x'` and `export … from 'x'` statements that survive compiling (not `import type`). */
export function valueImports (text: string): string[] {
  return [...text.matchAll(/^(import|export)(?!\s+type\s)[^'"]*?from\s+'([^']+)'/gms)].map((match) => match[2] as string)
}
