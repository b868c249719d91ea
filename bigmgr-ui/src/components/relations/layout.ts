// Where the relations graph draws its boxes and arrows (display only, deterministic): layered
// columns, a provider left of the services that require it. An arrow that spans several
// columns passes through a slot of its own in each column between (never through a box); each
// column is ordered by where its neighbours on the left are, to cross few arrows. Several
// arrows between the same two services are spread apart.
import type { RelationView } from '../../api/types'

export const NODE_W = 168
export const NODE_H = 44
/** The height of the slot a passing arrow takes in a column. */
const PASS_H = 12
const COL_GAP = 120
const ROW_GAP = 20
const PAD = 16
/** How far apart parallel arrows (same two services) are drawn. */
const SPREAD = 14

export interface NodeBox {
  name: string
  col: number
  x: number
  y: number
}

export interface EdgePath {
  id: number
  /** An SVG path from the requirer's box to the provider's. */
  d: string
  /** Where its label goes: the middle of its first stretch, next to the requirer. */
  lx: number
  ly: number
}

export interface Layout {
  nodes: NodeBox[]
  edges: EdgePath[]
  width: number
  height: number
}

type Ends = Pick<RelationView, 'requirer' | 'provider'>

/**
 * The column of each service: 0 for one that requires nothing, else one more than the
 * deepest provider it requires (a relation that closes a cycle is not followed).
 */
export function columns(names: string[], relations: readonly Ends[]): Map<string, number> {
  const providers = new Map<string, string[]>()
  for (const r of relations) if (r.requirer !== r.provider) add(providers, r.requirer, r.provider)
  for (const p of providers.values()) p.sort()
  const col = new Map<string, number>()
  const open = new Set<string>()
  const visit = (n: string): number => {
    const known = col.get(n)
    if (known !== undefined) return known
    open.add(n)
    let c = 0
    for (const p of providers.get(n) ?? []) if (!open.has(p)) c = Math.max(c, visit(p) + 1)
    open.delete(n)
    col.set(n, c)
    return c
  }
  for (const n of [...names].sort()) visit(n)
  return col
}

/** One slot of a column: a service's box, or where an arrow passes. */
interface Slot {
  key: string
  col: number
  /** The slots in the column to the left this one is joined to. */
  left: string[]
  pass: boolean
  y: number
}

/** Boxes for `names` (and any service only a relation names) and an arrow per relation. */
export function layout(names: string[], relations: readonly RelationView[]): Layout {
  const all = [...new Set([...names, ...relations.flatMap((r) => [r.requirer, r.provider])])].sort()
  const col = columns(all, relations)
  const rels = [...relations].sort((a, b) => a.id - b.id)

  // Slots: every service, and a passing slot per arrow per column it crosses.
  const slots = new Map<string, Slot>()
  for (const n of all) slots.set(`s:${n}`, { key: `s:${n}`, col: col.get(n) ?? 0, left: [], pass: false, y: 0 })
  const route = new Map<number, string[]>()
  for (const r of rels) {
    const a = col.get(r.requirer) ?? 0
    const b = col.get(r.provider) ?? 0
    const step = b < a ? -1 : 1
    const chain = [`s:${r.requirer}`]
    for (let c = a + step; c !== b && a !== b; c += step) {
      const key = `p:${r.id}:${c}`
      slots.set(key, { key, col: c, left: [], pass: true, y: 0 })
      chain.push(key)
    }
    chain.push(`s:${r.provider}`)
    route.set(r.id, chain)
    for (let i = 1; i < chain.length; i++) {
      const [p, q] = [slots.get(chain[i - 1] ?? ''), slots.get(chain[i] ?? '')]
      if (!p || !q || p.col === q.col) continue
      const [l, rgt] = p.col < q.col ? [p, q] : [q, p]
      rgt.left.push(l.key)
    }
  }

  // Columns, left to right: each ordered by the mean row of what it joins on the left (one
  // sweep; ties and the unjoined by boxes first, then name).
  const byCol: Slot[][] = []
  for (const s of slots.values()) (byCol[s.col] ??= []).push(s)
  const row = new Map<string, number>()
  byCol.forEach((members, c) => {
    const centre = (s: Slot): number => {
      const rows = s.left.map((k) => row.get(k)).filter((x): x is number => x !== undefined)
      return c === 0 || rows.length === 0 ? Infinity : rows.reduce((x, y) => x + y, 0) / rows.length
    }
    const keyed = members.map((s) => ({ s, at: centre(s) }))
    keyed.sort((x, y) => x.at - y.at || Number(x.s.pass) - Number(y.s.pass) || (x.s.key < y.s.key ? -1 : x.s.key > y.s.key ? 1 : 0))
    members.splice(0, members.length, ...keyed.map((k) => k.s))
    members.forEach((s, i) => row.set(s.key, i))
  })

  const extent = (members: Slot[]): number =>
    members.reduce((h, s) => h + (s.pass ? PASS_H : NODE_H), 0) + Math.max(0, members.length - 1) * ROW_GAP
  const tallest = Math.max(0, ...byCol.map(extent))
  const nodes: NodeBox[] = []
  const colX = (c: number): number => PAD + c * (NODE_W + COL_GAP)
  byCol.forEach((members, c) => {
    // A shorter column is centred beside the tallest one.
    let y = PAD + (tallest - extent(members)) / 2
    for (const s of members) {
      s.y = y
      if (!s.pass) nodes.push({ name: s.key.slice(2), col: c, x: colX(c), y })
      y += (s.pass ? PASS_H : NODE_H) + ROW_GAP
    }
  })

  // Parallel arrows: the relations between one pair of services, in id order.
  const pairs = new Map<string, number[]>()
  for (const r of rels) add(pairs, pairKey(r), r.id)
  const edges: EdgePath[] = []
  for (const r of relations) {
    const chain = (route.get(r.id) ?? []).map((k) => slots.get(k)).filter((s): s is Slot => s !== undefined)
    const siblings = pairs.get(pairKey(r)) ?? [r.id]
    const shift = (siblings.indexOf(r.id) - (siblings.length - 1) / 2) * SPREAD
    edges.push({ id: r.id, ...draw(chain, shift, colX) })
  }

  return {
    nodes,
    edges,
    width: byCol.length === 0 ? 0 : 2 * PAD + byCol.length * NODE_W + (byCol.length - 1) * COL_GAP,
    height: tallest === 0 ? 0 : 2 * PAD + tallest,
  }
}

function add<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const list = m.get(k)
  if (list) list.push(v)
  else m.set(k, [v])
}

/** The two services of a relation, either way round. */
function pairKey(r: Ends): string {
  return [r.requirer, r.provider].sort().join('\u0000')
}

/**
 * The path along `chain` (the requirer's slot, passing slots, the provider's): out of a box's
 * side, straight through each passing slot, and S-curves between columns.
 */
function draw(chain: Slot[], shift: number, colX: (c: number) => number): Omit<EdgePath, 'id'> {
  const first = chain[0]
  const last = chain[chain.length - 1]
  if (!first || !last) return { d: '', lx: 0, ly: 0 }
  const mid = (s: Slot): number => s.y + (s.pass ? PASS_H / 2 : NODE_H / 2 + shift)
  if (first.col === last.col) {
    // Only a service related to itself (which the server refuses): a loop on its right side.
    const x = colX(first.col) + NODE_W
    const y = mid(first)
    return { d: `M${x},${y - 8} C${x + 48},${y - 24} ${x + 48},${y + 24} ${x},${y + 8}`, lx: x + 40, ly: y }
  }
  const leftward = last.col < first.col
  // Each slot's entry and exit x, in the arrow's direction.
  const entry = (s: Slot): number => colX(s.col) + (leftward ? NODE_W : 0)
  const exit = (s: Slot): number => colX(s.col) + (leftward ? 0 : NODE_W)
  let d = `M${exit(first)},${mid(first)}`
  let label = { lx: 0, ly: 0 }
  for (let i = 1; i < chain.length; i++) {
    const p = chain[i - 1]
    const q = chain[i]
    if (!p || !q) continue
    const [x0, y0, x1, y1] = [exit(p), mid(p), entry(q), mid(q)]
    const mx = (x0 + x1) / 2
    d += ` C${mx},${y0} ${mx},${y1} ${x1},${y1}`
    if (i === 1) label = { lx: mx, ly: (y0 + y1) / 2 }
    if (q.pass) d += ` L${exit(q)},${y1}`
  }
  return { d, ...label }
}
