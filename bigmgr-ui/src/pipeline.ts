// Pipelines (docs/pipelines.md): the example definition the console's editor starts from — the
// first example of docs/pipelines.md, as written there (a test checks they agree) — and which
// units of a definition are blocking (the pipeline's page offers Scale for the others).
import { codeEnd } from './spec'

export const EXAMPLE_PIPELINE = `name = "sorted"

[sources.files]              # the files of a directory on one host, 100 lines to a batch
kind = "dir"
host = "h1"
path = "/data/in"
records = 100                # watch = true: files added later too, each once it has been left
                             # alone for 2 s (then the source never ends: stop it by draining)

[units.filter]               # runs per batch, as batches come
program = "/usr/local/bin/filter"
kind = "non-blocking"
replicas = 3
hosts = ["h1", "h2", "h3"]   # spread over these (empty: any host of the cluster)
timeout = "5m"               # per batch (default 10m)
resources = { memory = "512MiB", cpu_time = "2m" }   # per run of the program (ulimit -v, -t)
inputs = ["files"]

[units.sort]                 # runs once, on all of its input, when every upstream batch is done
program = { stack = "demo", service = "hello", program = "sort.sh" }
kind = "blocking"
inputs = ["filter"]

[sinks.out]                  # one file per batch, named by the batch
kind = "dir"
host = "h1"
path = "/data/out"
inputs = ["sort"]
`

/** A TOML key path (`units."my unit".kind`) split at its dots (outside quotes), each part unquoted. */
function keyPath(text: string): string[] {
  const parts: string[] = []
  let part = ''
  let quote: string | null = null
  for (let i = 0; i < text.length; i++) {
    const c = text[i] ?? ''
    if (quote === '"' && c === '\\') {
      part += text[++i] ?? ''
    } else if (quote !== null) {
      if (c === quote) quote = null
      else part += c
    } else if (c === '"' || c === "'") {
      quote = c
    } else if (c === '.') {
      parts.push(part.trim())
      part = ''
    } else {
      part += c
    }
  }
  parts.push(part.trim())
  return parts
}

/** Where the `=` of a `key = value` line is (outside quotes), or -1. */
function equalsAt(line: string): number {
  let quote: string | null = null
  for (let i = 0; i < line.length; i++) {
    const c = line[i]
    if (quote !== null) {
      if (c === quote) quote = null
    } else if (c === '"' || c === "'") quote = c
    else if (c === '=') return i
    else if (c === '{' || c === '[') return -1
  }
  return -1
}

const BLOCKING = /^["']blocking["']$/
/** `kind = "blocking"` at the top level of an inline table's text. */
const INLINE_BLOCKING = /(?:^|[{,])\s*kind\s*=\s*["']blocking["']\s*(?:[,}]|$)/

/**
 * The units a pipeline's definition makes blocking (`kind = "blocking"`): they run once, as one
 * replica, so they cannot be scaled. The status the server answers names a node's kind
 * (`unit`) but not whether it blocks, so the console reads it from the definition as written
 * — tables (`[units.sort]`), dotted keys (`units.sort.kind = …`) and inline tables
 * (`sort = { kind = "blocking", … }` under `[units]`). Display only: the server still refuses
 * to scale a blocking unit.
 */
export function blockingUnits(definition: string): Set<string> {
  const blocking = new Set<string>()
  let table: string[] = []
  let multiline: string | null = null
  for (const raw of definition.split('\n')) {
    if (multiline !== null) {
      // Inside a multi-line string: nothing here is a key.
      if (raw.includes(multiline)) multiline = null
      continue
    }
    const line = raw.slice(0, codeEnd(raw)).trim()
    if (line === '') continue
    const header = /^\[\[?(.*?)\]\]?$/.exec(line)
    if (header) {
      table = keyPath(header[1] ?? '')
      continue
    }
    const eq = equalsAt(line)
    if (eq < 0) continue
    const path = [...table, ...keyPath(line.slice(0, eq))]
    const value = line.slice(eq + 1).trim()
    for (const q of ['"""', "'''"]) {
      if (value.startsWith(q) && value.indexOf(q, 3) < 0) multiline = q
    }
    if (path[0] !== 'units' || path[1] === undefined) continue
    const unit = path[1]
    if (path.length === 3 && path[2] === 'kind' && BLOCKING.test(value)) blocking.add(unit)
    if (path.length === 2 && value.startsWith('{') && INLINE_BLOCKING.test(value)) blocking.add(unit)
  }
  return blocking
}
