// Where a pipeline's graph draws its boxes and arrows (display only, deterministic): left to
// right by depth — a node's column is the longest path to it from a source (sources in column
// 0, then channels, units … sinks), rows within a column ordered by where the nodes feeding it
// sit, to cross few arrows. An arrow that spans several columns passes through a slot of its
// own in each column between, never through a box.

import { columns } from '../relations/layout'

export const NODE_W = 184
export const NODE_H = 100
/** The height of the slot a passing arrow takes in a column. */
const PASS_H = 10
const COL_GAP = 56
const ROW_GAP = 18
const PAD = 12

/** What the layout needs of a node: its name, and its kind (sources sort first in column 0). */
export interface GraphNode {
  name: string
  kind: string
}

export interface PlacedNode {
  name: string
  col: number
  /** Its row in its column, counting boxes only. */
  row: number
  x: number
  y: number
}

export interface PlacedEdge {
  from: string
  to: string
  /** An SVG path from the right side of `from`'s box to the left side of `to`'s. */
  d: string
}

export interface PipelineLayout {
  nodes: PlacedNode[]
  edges: PlacedEdge[]
  width: number
  height: number
}

/**
 * The column of each node: 0 for one nothing feeds (a source), else one more than the deepest
 * node feeding it — the longest path from a source. An edge that closes a cycle (which the
 * server refuses) is not followed.
 */
export function depths(names: readonly string[], edges: readonly (readonly [string, string])[]): Map<string, number> {
  // The same longest-path columns as the relations graph: a node "requires" what feeds it.
  return columns([...names], edges.map(([from, to]) => ({ requirer: to, provider: from })))
}

/** One slot of a column: a node's box, or where an arrow passes. */
interface Slot {
  key: string
  col: number
  /** The slots in the column to the left joined to this one. */
  left: string[]
  pass: boolean
  /** Kind rank: sources first in a column of ties. */
  rank: number
  y: number
}

const KIND_RANK: Record<string, number> = { source: 0, unit: 1, channel: 2, sink: 3 }

/** Boxes for `nodes` and an arrow per edge between two of them. */
export function pipelineLayout(nodes: readonly GraphNode[], edges: readonly (readonly [string, string])[]): PipelineLayout {
  const kinds = new Map(nodes.map((n) => [n.name, n.kind]))
  const names = [...kinds.keys()].sort()
  const known = edges.filter(([a, b]) => kinds.has(a) && kinds.has(b))
  const col = depths(names, known)

  const slots = new Map<string, Slot>()
  for (const n of names) {
    slots.set(`n:${n}`, { key: `n:${n}`, col: col.get(n) ?? 0, left: [], pass: false, rank: KIND_RANK[kinds.get(n) ?? ''] ?? 4, y: 0 })
  }
  // Each edge's chain of slots: its start's box, a passing slot per column it crosses, its end's box.
  const chains: { from: string; to: string; chain: string[] }[] = []
  known.forEach(([from, to], i) => {
    const a = col.get(from) ?? 0
    const b = col.get(to) ?? 0
    const chain = [`n:${from}`]
    for (let c = a + 1; c < b; c++) {
      const key = `p:${i}:${c}`
      slots.set(key, { key, col: c, left: [], pass: true, rank: 5, y: 0 })
      chain.push(key)
    }
    chain.push(`n:${to}`)
    chains.push({ from, to, chain })
    for (let k = 1; k < chain.length; k++) {
      const p = slots.get(chain[k - 1] ?? '')
      const q = slots.get(chain[k] ?? '')
      if (p && q && p.col < q.col) q.left.push(p.key)
    }
  })

  // Columns, left to right: each ordered by the mean row of what feeds it (one sweep; ties by
  // kind, boxes before passing slots, then name).
  const byCol: Slot[][] = []
  for (const s of slots.values()) (byCol[s.col] ??= []).push(s)
  for (let c = 0; c < byCol.length; c++) byCol[c] ??= []
  const row = new Map<string, number>()
  byCol.forEach((members, c) => {
    const centre = (s: Slot): number => {
      const rows = s.left.map((k) => row.get(k)).filter((x): x is number => x !== undefined)
      return c === 0 || rows.length === 0 ? Infinity : rows.reduce((x, y) => x + y, 0) / rows.length
    }
    const keyed = members.map((s) => ({ s, at: centre(s) }))
    keyed.sort((x, y) => x.at - y.at || x.s.rank - y.s.rank || (x.s.key < y.s.key ? -1 : x.s.key > y.s.key ? 1 : 0))
    members.splice(0, members.length, ...keyed.map((k) => k.s))
    members.forEach((s, i) => row.set(s.key, i))
  })

  const extent = (members: Slot[]): number =>
    members.reduce((h, s) => h + (s.pass ? PASS_H : NODE_H), 0) + Math.max(0, members.length - 1) * ROW_GAP
  const tallest = Math.max(0, ...byCol.map(extent))
  const colX = (c: number): number => PAD + c * (NODE_W + COL_GAP)
  const placed: PlacedNode[] = []
  byCol.forEach((members, c) => {
    // A shorter column is centred beside the tallest one.
    let y = PAD + (tallest - extent(members)) / 2
    let boxes = 0
    for (const s of members) {
      s.y = y
      if (!s.pass) placed.push({ name: s.key.slice(2), col: c, row: boxes++, x: colX(c), y })
      y += (s.pass ? PASS_H : NODE_H) + ROW_GAP
    }
  })

  const mid = (s: Slot): number => s.y + (s.pass ? PASS_H : NODE_H) / 2
  const placedEdges = chains.map(({ from, to, chain }) => {
    const path = chain.map((k) => slots.get(k)).filter((s): s is Slot => s !== undefined)
    return { from, to, d: draw(path, mid, colX) }
  })

  return {
    nodes: placed,
    edges: placedEdges,
    width: byCol.length === 0 ? 0 : 2 * PAD + byCol.length * NODE_W + (byCol.length - 1) * COL_GAP,
    height: tallest === 0 ? 0 : 2 * PAD + tallest,
  }
}

/**
 * The path along `chain`: out of the first box's right side, an S-curve into each next slot's
 * left side, straight across a passing slot. An edge going back (a cycle, which the server
 * refuses) is one curve from the right side of its start to the left side of its end.
 */
function draw(chain: Slot[], mid: (s: Slot) => number, colX: (c: number) => number): string {
  const first = chain[0]
  if (!first) return ''
  let d = `M${colX(first.col) + NODE_W},${mid(first)}`
  for (let i = 1; i < chain.length; i++) {
    const p = chain[i - 1]
    const q = chain[i]
    if (!p || !q) continue
    const [x0, y0, x1, y1] = [colX(p.col) + NODE_W, mid(p), colX(q.col), mid(q)]
    const bend = Math.max(24, Math.abs(x1 - x0) / 2)
    d += ` C${x0 + bend},${y0} ${x1 - bend},${y1} ${x1},${y1}`
    if (q.pass) d += ` L${x1 + NODE_W},${y1}`
  }
  return d
}
