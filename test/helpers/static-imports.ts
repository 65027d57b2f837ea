/**
 * The modules reachable from some roots by static imports (what loading
 * them loads for sure): the walk behind the tests that keep modules out of
 * a cluster's primary and OpenTelemetry out of a data plane.
 */
import { readFileSync } from 'node:fs'
import { dirname, relative, resolve } from 'node:path'

/** `import … from 'x'` and `export … from 'x'` that survive compiling (not `import type`), and bare `import 'x'`. */
export function staticImports (text: string): string[] {
  return [...text.matchAll(/^(?:import|export)(?!\s+type\s)[^'"]*?from\s+'([^']+)'|^import\s+'([^']+)'/gms)].map((match) => (match[1] ?? match[2]) as string)
}

/** Every module reached (src/ paths, package specifiers), each with the file that first imported it. */
export function reachable (roots: readonly string[]): Map<string, string> {
  const parentOf = new Map<string, string>(roots.map((root) => [root, '(root)']))
  const queue = [...roots]
  while (queue.length > 0) {
    const file = queue.shift() as string
    for (const specifier of staticImports(readFileSync(file, 'utf8'))) {
      const target = specifier.startsWith('.') ? relative('.', resolve(dirname(file), specifier.replace(/\.js$/, '.ts'))) : specifier
      if (parentOf.has(target)) continue
      parentOf.set(target, file)
      if (target.startsWith('src/')) queue.push(target)
    }
  }
  return parentOf
}
