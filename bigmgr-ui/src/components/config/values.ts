// Config values as the forms keep them (no rules of their own: the server checks every value):
// the value a property shows, the merge patch of what the user changed (`null`: back to the
// default), how a value reads (secrets masked), and the server's message for a form field.
import type { ApiError } from '../../api/client'
import type { ServiceConfigs, StackConfigView } from '../../api/types'

/** How the server shows a secret, and how the console shows one it was given. */
export const MASK = '********'

/** The request field of a property, as a problem's `field` names it. */
export function configField(type: string, prop: string): string {
  return `configs.${type}.${prop}`
}

/** The server's message when its problem is about `field`, else undefined. */
export function fieldMessage(error: ApiError | null, field: string): string | undefined {
  return error !== null && error.field === field ? error.message : undefined
}

/** Whether two JSON values are equal. */
export function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b)
}

function has(o: Record<string, unknown> | undefined, key: string): o is Record<string, unknown> {
  return o !== undefined && Object.hasOwn(o, key)
}

/** Whether the patch changes (type, prop), to a value or back to the default. */
export function edited(patch: ServiceConfigs, type: string, prop: string): boolean {
  return has(patch[type], prop)
}

/**
 * The value a property shows: the user's edit, else the current version's value, else
 * undefined (the default applies). An edit back to the default (`null`) shows undefined.
 */
export function shownValue(values: ServiceConfigs, patch: ServiceConfigs, type: string, prop: string): unknown {
  const p = patch[type]
  if (has(p, prop)) return p[prop] === null ? undefined : p[prop]
  return values[type]?.[prop]
}

/** `patch` with its entry for (type, prop) replaced by `entry` (undefined: no entry). */
function withEntry(patch: ServiceConfigs, type: string, prop: string, entry: { v: unknown } | undefined): ServiceConfigs {
  const props = Object.fromEntries(Object.entries(patch[type] ?? {}).filter(([k]) => k !== prop))
  if (entry) props[prop] = entry.v
  const rest = Object.entries(patch).filter(([k]) => k !== type)
  return Object.fromEntries(Object.keys(props).length > 0 ? [...rest, [type, props]] : rest)
}

/**
 * The patch after the user set (type, prop) to `v` over the current `values`; `undefined`
 * means "back to the default" (a `null` when the current version sets the property). A
 * value equal to the current one is no change.
 */
export function withEdit(values: ServiceConfigs, patch: ServiceConfigs, type: string, prop: string, v: unknown): ServiceConfigs {
  const base = values[type]
  if (has(base, prop)) {
    if (v === undefined) return withEntry(patch, type, prop, { v: null })
    return withEntry(patch, type, prop, same(v, base[prop]) ? undefined : { v })
  }
  return withEntry(patch, type, prop, v === undefined ? undefined : { v })
}

/** The patch without any change of (type, prop). */
export function withoutEdit(patch: ServiceConfigs, type: string, prop: string): ServiceConfigs {
  return withEntry(patch, type, prop, undefined)
}

/** Whether the patch changes nothing. */
export function isEmpty(patch: ServiceConfigs): boolean {
  return Object.values(patch).every((p) => Object.keys(p).length === 0)
}

/** The values of `patch` that differ from their property's default (what a new service sends). */
export function changedFromDefault(patch: ServiceConfigs, schema: StackConfigView[]): ServiceConfigs {
  const out: ServiceConfigs = {}
  for (const [type, props] of Object.entries(patch)) {
    const cfg = schema.find((c) => c.name === type)
    for (const [prop, v] of Object.entries(props)) {
      if (v === null || v === undefined) continue
      const def = cfg?.properties.find((p) => p.name === prop)?.default
      if (def !== undefined && same(v, def)) continue
      ;(out[type] ??= {})[prop] = v
    }
  }
  return out
}

/** Whether (type, prop) is a secret in the schema. */
export function isSecret(schema: StackConfigView[], type: string, prop: string): boolean {
  return schema.find((c) => c.name === type)?.properties.find((p) => p.name === prop)?.secret ?? false
}

/** How a value reads in a table: absent '–', strings as they are, others as JSON; secrets masked. */
export function valueText(v: unknown, secret = false): string {
  if (v === undefined || v === null) return '–'
  if (secret) return MASK
  return typeof v === 'string' ? v : JSON.stringify(v)
}

/** Rows of a patch or a version's values: one per (type, prop), sorted. */
export function entries(configs: ServiceConfigs): { type: string; prop: string; value: unknown }[] {
  return Object.entries(configs)
    .flatMap(([type, props]) => Object.entries(props).map(([prop, value]) => ({ type, prop, value })))
    .sort((a, b) => a.type.localeCompare(b.type) || a.prop.localeCompare(b.prop))
}
