// Values the model or a tool wrote, shown as text (never as HTML: they are untrusted).

/** A string as it is, nothing as '', anything else as indented JSON. */
export function asText(v: unknown): string {
  if (typeof v === 'string') return v
  if (v === undefined || v === null) return ''
  return JSON.stringify(v, null, 2)
}
