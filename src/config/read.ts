import { LineCounter, isMap, isScalar, isSeq, parseDocument, type Document as YamlDocument } from 'yaml'
import { ConfigError, ErrorCode, type ConfigIssue } from '../errors.js'
import { yamlErrorIssue } from './yaml-error.js'

/** A parsed document and where its nodes are in the text. */
export type ParsedText = {
  readonly value: unknown
  /** Each issue with the line of the deepest node its path reaches in the file. */
  readonly withLines: (issues: readonly ConfigIssue[]) => ConfigIssue[]
}

/**
 * Parse YAML or JSON text (JSON is read by the YAML parser); duplicate keys
 * are parse errors. A syntax error is one issue, where the parser first
 * stumbled, with an excerpt (yaml-error.ts): its later errors follow from
 * the first (33 of them for one unquoted `web-{env}` in a flow mapping).
 */
export function parseYamlText (text: string, file?: string): ParsedText {
  const lineCounter = new LineCounter()
  const document = parseDocument(text, { prettyErrors: true, uniqueKeys: true, lineCounter })
  const first = document.errors[0]
  if (first !== undefined) {
    const at = first.linePos?.[0] ?? lineCounter.linePos(first.pos[0])
    throw new ConfigError(ErrorCode.CONFIG_PARSE, [yamlErrorIssue(text, { message: first.message, line: at.line, column: at.col }, file)])
  }
  return {
    value: document.toJS(),
    withLines: (issues) => issues.map((issue) => ({ ...issue, line: lineOf(document, lineCounter, issue.path) }))
  }
}

/** `backends.web.prod.retry.attempts` → the line of that node (keys may hold dots: the longest key that fits wins). */
function lineOf (document: YamlDocument.Parsed, lineCounter: LineCounter, path: string): number | undefined {
  let node: unknown = document.contents
  let rest = path
  let line = rangeLine(node, lineCounter)
  while (rest.length > 0) {
    const index = /^\[(\d+)\]\.?/.exec(rest)
    if (index !== null && isSeq(node)) {
      node = node.items[Number(index[1])]
      rest = rest.slice(index[0].length)
    } else if (isMap(node)) {
      const keys = node.items.map((pair) => String(isScalar(pair.key) ? pair.key.value : pair.key))
        .filter((key) => rest === key || rest.startsWith(`${key}.`) || rest.startsWith(`${key}[`))
        .sort((a, b) => b.length - a.length)
      const key = keys[0]
      if (key === undefined) break
      node = node.get(key, true)
      rest = rest.slice(key.length).replace(/^\./, '')
    } else {
      break
    }
    line = rangeLine(node, lineCounter) ?? line
  }
  return line
}

function rangeLine (node: unknown, lineCounter: LineCounter): number | undefined {
  const range = (node as { range?: [number, number, number] } | null | undefined)?.range
  return range === undefined ? undefined : lineCounter.linePos(range[0]).line
}
