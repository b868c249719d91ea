// Cluster specs in the console (docs/spec.md): the secret references a spec's text holds, a
// plan as the CLI prints it (one signed line per change), and its counts. No rule of its own:
// the server parses and checks the spec; these only read its text and show its answers.
import type { Plan, PlannedRelation, PlannedUnit } from './api/types'

/** A secret a spec refers to: `{ env = "NAME" }` or `{ file = "/path" }`, keyed `env:NAME` / `file:/path`. */
export interface SecretRef {
  key: string
  kind: 'env' | 'file'
  name: string
}

// An inline table holding only `env` or `file` with a basic ("…") or literal ('…') string.
const REF = /\{\s*(env|file)\s*=\s*(?:"((?:[^"\\\n]|\\.)*)"|'([^'\n]*)')\s*\}/g

/** A basic string's escapes that a name or path may hold (`\"`, `\\`, `\t`…), undone. */
function unescape(s: string): string {
  return s.replace(/\\(["\\bfnrt])/g, (_, c: string) => ({ b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' })[c] ?? c)
}

/** Where a `#` comment starts on `line` (outside strings), or the line's length. */
export function codeEnd(line: string): number {
  let quote: string | null = null
  for (let i = 0; i < line.length; i++) {
    const c = line[i]
    if (quote === '"' && c === '\\') i++
    else if (quote !== null) {
      if (c === quote) quote = null
    } else if (c === '"' || c === "'") quote = c
    else if (c === '#') return i
  }
  return line.length
}

/** The secret references in a spec's text, each once, in the order they first appear (comments skipped). */
export function secretRefs(text: string): SecretRef[] {
  const seen = new Map<string, SecretRef>()
  for (const line of text.split('\n')) {
    for (const m of line.slice(0, codeEnd(line)).matchAll(REF)) {
      const kind = m[1] === 'file' ? 'file' : 'env'
      const name = m[2] !== undefined ? unescape(m[2]) : (m[3] ?? '')
      const key = `${kind}:${name}`
      if (name !== '' && !seen.has(key)) seen.set(key, { key, kind, name })
    }
  }
  return [...seen.values()]
}

/** The `cluster = "…"` a spec's text names at its top (before any table), if any. */
export function specCluster(text: string): string | null {
  for (const line of text.split('\n')) {
    if (/^\s*\[/.test(line)) return null
    const m = /^\s*cluster\s*=\s*(?:"((?:[^"\\]|\\.)*)"|'([^']*)')/.exec(line)
    if (m) return m[1] !== undefined ? unescape(m[1]) : (m[2] ?? null)
  }
  return null
}

/** The character offsets of line `line` (1-based) of `text`: where it starts and ends. */
export function lineRange(text: string, line: number): [number, number] {
  let start = 0
  for (let n = 1; n < line; n++) {
    const next = text.indexOf('\n', start)
    if (next < 0) return [text.length, text.length]
    start = next + 1
  }
  const end = text.indexOf('\n', start)
  return [start, end < 0 ? text.length : end]
}

/** A plan line's sign, as the CLI prints it: adds, removals, changes, jobs, kept, problems. */
export type Sign = '+' | '-' | '~' | '>' | '=' | '!'

/** One line of a plan: its sign, the message (`spec.line.<key>`), its parameters, and why (a unit's host). */
export interface PlanLine {
  sign: Sign
  key: string
  params: Record<string, string>
  why?: string
}

/** A config value as the CLI shows it (JSON), `unset` for none. */
export function valueText(v: unknown, unset: string): string {
  return v === null || v === undefined ? unset : JSON.stringify(v)
}

/** A plan as the CLI prints it, in its order: one line per change (`unset` names a value not set). */
export function planLines(p: Plan, cluster: string, unset: string): PlanLine[] {
  const out: PlanLine[] = []
  const add = (sign: Sign, key: string, params: Record<string, string> = {}, why?: string | null): void => {
    out.push(why ? { sign, key, params, why } : { sign, key, params })
  }
  if (p.create_cluster) add('+', 'cluster', { cluster })
  for (const h of p.hosts_to_add) add('+', 'host', { name: h.name, address: h.address })
  for (const s of p.services_to_add) add('+', 'service', { name: s })
  for (const s of p.services_to_remove) add('-', 'service', { name: s })
  const unit = (u: PlannedUnit): Record<string, string> => ({ service: u.service, component: u.component, host: u.host })
  for (const u of p.units_to_add) add('+', 'unit', unit(u), u.why)
  for (const u of p.units_to_remove) add('-', 'unit', unit(u))
  for (const c of p.configs) {
    add('~', c.host === null ? 'config' : 'configOn', {
      service: c.service,
      type: c.config_type,
      property: c.property,
      host: c.host ?? '',
      from: valueText(c.from, unset),
      to: valueText(c.to, unset),
    })
  }
  for (const x of p.policies ?? []) {
    add('~', 'policy', { service: x.service, policy: x.policy, from: valueText(x.from, unset), to: valueText(x.to, unset) })
  }
  const relation = (r: PlannedRelation): Record<string, string> => ({
    requirer: r.requirer,
    requirerEndpoint: r.requirer_endpoint,
    provider: r.provider,
    providerEndpoint: r.provider_endpoint,
  })
  for (const r of p.relations_to_add) add('+', 'relation', relation(r))
  for (const r of p.relations_to_remove) add('-', 'relation', relation(r))
  for (const j of p.jobs) {
    add('>', j.hosts.length === 0 ? 'job' : 'jobOn', { command: j.command, service: j.service, hosts: j.hosts.join(', '), why: j.why })
  }
  for (const k of p.kept) add('=', 'kept', { what: k })
  for (const problem of p.problems) add('!', 'problem', { problem })
  return out
}

/** True if applying would change nothing (kept things and problems change nothing). */
export function planEmpty(p: Plan): boolean {
  return (
    !p.create_cluster &&
    p.hosts_to_add.length === 0 &&
    p.services_to_add.length === 0 &&
    p.services_to_remove.length === 0 &&
    p.units_to_add.length === 0 &&
    p.units_to_remove.length === 0 &&
    p.configs.length === 0 &&
    (p.policies ?? []).length === 0 &&
    p.relations_to_add.length === 0 &&
    p.relations_to_remove.length === 0 &&
    p.jobs.length === 0
  )
}

/** How many of each change a plan holds, for the apply's confirmation. */
export interface PlanCounts {
  hosts: number
  servicesAdded: number
  servicesRemoved: number
  unitsAdded: number
  unitsRemoved: number
  configs: number
  policies: number
  relationsAdded: number
  relationsRemoved: number
  jobs: number
}

export function planCounts(p: Plan): PlanCounts {
  return {
    hosts: p.hosts_to_add.length,
    servicesAdded: p.services_to_add.length,
    servicesRemoved: p.services_to_remove.length,
    unitsAdded: p.units_to_add.length,
    unitsRemoved: p.units_to_remove.length,
    configs: p.configs.length,
    policies: (p.policies ?? []).length,
    relationsAdded: p.relations_to_add.length,
    relationsRemoved: p.relations_to_remove.length,
    jobs: p.jobs.length,
  }
}

/** How many things an apply of the plan removes (services, units, relations). */
export function planRemovals(p: Plan): number {
  return p.services_to_remove.length + p.units_to_remove.length + p.relations_to_remove.length
}
