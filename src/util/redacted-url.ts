/** A URL with its password replaced by `***`, for logs and /admin/state (`redis://user:***@host:6379`); `fallback` for text that is no URL. */
export function redactedUrl (url: string, fallback: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password !== '') parsed.password = '***'
    return parsed.toString()
  } catch {
    return fallback
  }
}
