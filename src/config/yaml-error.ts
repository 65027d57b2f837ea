import type { ConfigIssue } from '../errors.js'

/**
 * A YAML syntax error for a person: one issue where the parser first
 * stumbled (its later errors follow from the first and are dropped), with
 * the source line and a caret under the column. When the line holds an
 * unquoted `{env}` or `${NAME}`, the usual cause (YAML ends a plain value
 * inside `{ … }` at the first `{` or `}`, and reads a value starting with
 * `{` as a mapping), the issue says which value to quote instead of the
 * parser's words. No yaml import: read.ts hands the error over as data.
 */

/** Where the parser stopped (1-based), and its message. */
export type YamlSyntaxError = { readonly message: string, readonly line: number, readonly column: number }

/** The one issue a YAML syntax error becomes. */
export function yamlErrorIssue (text: string, parsed: YamlSyntaxError, file?: string): ConfigIssue {
  const lines = text.split(/\r?\n/)
  const error = onWrittenLine(lines, parsed)
  const hint = placeholderHint(lines, error)
  const line = hint?.line ?? error.line
  const column = hint?.column ?? error.column
  return {
    path: '',
    message: hint?.message ?? parserMessage(error.message),
    line,
    column,
    ...(file === undefined ? {} : { file }),
    excerpt: caretExcerpt(lines[line - 1] ?? '', column)
  }
}

/** An error found on a blank line (the end of the text: `listen: [`) is shown just after the last line written. */
function onWrittenLine (lines: readonly string[], error: YamlSyntaxError): YamlSyntaxError {
  let line = error.line
  while (line > 1 && (lines[line - 1] ?? '').trim() === '') line--
  return line === error.line ? error : { ...error, line, column: (lines[line - 1] ?? '').length + 1 }
}

/** yaml's message without its own location and excerpt: `Map keys must be unique at line 2, column 1:\n\n…` → `Map keys must be unique`. */
function parserMessage (message: string): string {
  const first = message.split('\n')[0] ?? message
  return first.replace(/ at line \d+, column \d+:?$/, '').replace(/:$/, '')
}

const PLACEHOLDER = String.raw`(?:\{env\}|\$\{[^}\s]*\})`
/** A plain value holding a placeholder: the characters that may sit around it in a flow collection, and placeholders. */
const VALUE_WITH_PLACEHOLDER = new RegExp(String.raw`(?:[^\s,[\]{}]|${PLACEHOLDER})*${PLACEHOLDER}(?:[^\s,[\]{}]|${PLACEHOLDER})*`, 'g')

type Hint = { readonly message: string, readonly line: number, readonly column: number }

/** The error's line (or, for an error found at the start of the next one, the line before) with an unquoted placeholder in a value. */
function placeholderHint (lines: readonly string[], error: YamlSyntaxError): Hint | undefined {
  for (const line of [error.line, error.line - 1]) {
    const source = lines[line - 1]
    if (source === undefined) continue
    const values = [...unquoted(source).matchAll(VALUE_WITH_PLACEHOLDER)]
    if (values.length === 0) continue
    // The value the parser stumbled in or after: the last one starting at or before its column.
    const value = (line === error.line ? values.filter((match) => match.index + 1 <= error.column).pop() : values.pop()) ?? values[0]
    if (value === undefined) continue
    const why = value[0].startsWith('{') ? 'a value starting with { is read as a mapping' : 'inside { } or [ ], an unquoted { or } ends a value'
    return { message: `quote this value: ${JSON.stringify(value[0])} (${why})`, line, column: value.index + 1 }
  }
  return undefined
}

/** The line with quoted strings and a comment blanked out (same length, so columns hold). */
function unquoted (source: string): string {
  let result = ''
  let quote: string | undefined
  for (let index = 0; index < source.length; index++) {
    const char = source[index] as string
    if (quote !== undefined) {
      // `\"` inside double quotes does not end them.
      if (char === '\\' && quote === '"') { result += '  '; index++; continue }
      if (char === quote) quote = undefined
      result += ' '
    } else if (char === '"' || char === '\'') {
      quote = char
      result += ' '
    } else if (char === '#' && (index === 0 || /\s/.test(source[index - 1] as string))) {
      return result.padEnd(source.length, ' ')
    } else {
      result += char
    }
  }
  return result
}

/** Long lines are cut around the column, so the caret stays on a terminal's screen. */
const EXCERPT_WIDTH = 100

/** The source line (tabs as spaces) and a caret under `column`. */
function caretExcerpt (source: string, column: number): string[] {
  let shown = source.replaceAll('\t', ' ')
  let caretAt = column - 1
  if (shown.length > EXCERPT_WIDTH) {
    const start = Math.max(0, Math.min(caretAt - EXCERPT_WIDTH / 2, shown.length - EXCERPT_WIDTH))
    shown = `${start > 0 ? '…' : ''}${shown.slice(start, start + EXCERPT_WIDTH)}${start + EXCERPT_WIDTH < shown.length ? '…' : ''}`
    caretAt = caretAt - start + (start > 0 ? 1 : 0)
  }
  return [shown, `${' '.repeat(Math.max(0, caretAt))}^`]
}
