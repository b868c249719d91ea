import { describe, expect, it } from 'vitest'
import { NODE_H, NODE_W, depths, pipelineLayout, type GraphNode } from './layout'

type Edge = [string, string]

const node = (name: string, kind: string): GraphNode => ({ name, kind })

/** docs/pipelines.md's first example as the server's status draws it: implicit channels between. */
const SORTED: { nodes: GraphNode[]; edges: Edge[] } = {
  nodes: [
    node('files', 'source'),
    node('files->filter', 'channel'),
    node('filter', 'unit'),
    node('filter->sort', 'channel'),
    node('sort', 'unit'),
    node('sort->out', 'channel'),
    node('out', 'sink'),
  ],
  edges: [
    ['files', 'files->filter'],
    ['files->filter', 'filter'],
    ['filter', 'filter->sort'],
    ['filter->sort', 'sort'],
    ['sort', 'sort->out'],
    ['sort->out', 'out'],
  ],
}

/** The design's shared channel: `a, b → dc → c, d`. */
const SHARED: { nodes: GraphNode[]; edges: Edge[] } = {
  nodes: [node('a', 'source'), node('b', 'source'), node('dc', 'channel'), node('c', 'unit'), node('d', 'unit')],
  edges: [
    ['a', 'dc'],
    ['b', 'dc'],
    ['dc', 'c'],
    ['dc', 'd'],
  ],
}

/** The numbers of an SVG path, in order. */
function numbers(d: string): number[] {
  return [...d.matchAll(/-?\d+(?:\.\d+)?/g)].map((m) => Number(m[0]))
}

describe('pipeline layout', () => {
  it('puts each node in the column of its longest path from a source', () => {
    expect(Object.fromEntries(depths(SORTED.nodes.map((n) => n.name), SORTED.edges))).toEqual({
      files: 0,
      'files->filter': 1,
      filter: 2,
      'filter->sort': 3,
      sort: 4,
      'sort->out': 5,
      out: 6,
    })
    // A node fed by a short and a long path sits after the long one.
    const col = depths(['s', 'x', 'y', 'j'], [['s', 'x'], ['x', 'y'], ['y', 'j'], ['s', 'j']])
    expect(Object.fromEntries(col)).toEqual({ s: 0, x: 1, y: 2, j: 3 })
  })

  it('draws a shared channel a, b → dc → c, d: two sources, the channel between, two readers after it', () => {
    const l = pipelineLayout(SHARED.nodes, SHARED.edges)
    const at = new Map(l.nodes.map((n) => [n.name, n]))
    expect(l.nodes.map((n) => [n.name, n.col, n.row])).toEqual([
      ['a', 0, 0],
      ['b', 0, 1],
      ['dc', 1, 0],
      ['c', 2, 0],
      ['d', 2, 1],
    ])
    const [a, b, dc, c, d] = ['a', 'b', 'dc', 'c', 'd'].map((n) => at.get(n))
    if (!a || !b || !dc || !c || !d) throw new Error('a node is missing')
    // Left to right, rows top to bottom, the channel centred between its writers.
    expect(a.x).toBeLessThan(dc.x)
    expect(dc.x).toBeLessThan(c.x)
    expect(c.x).toBe(d.x)
    expect(a.y).toBeLessThan(b.y)
    expect(dc.y + NODE_H / 2).toBe((a.y + b.y + NODE_H) / 2)
    // One arrow per edge, from the right side of its start to the left side of its end.
    expect(l.edges.map((e) => [e.from, e.to])).toEqual(SHARED.edges)
    for (const e of l.edges) {
      const from = at.get(e.from)
      const to = at.get(e.to)
      if (!from || !to) throw new Error(`no box for ${e.from} or ${e.to}`)
      const n = numbers(e.d)
      expect(n.slice(0, 2)).toEqual([from.x + NODE_W, from.y + NODE_H / 2])
      expect(n.slice(-2)).toEqual([to.x, to.y + NODE_H / 2])
    }
    expect(l.width).toBe(c.x + NODE_W + 12)
    expect(l.height).toBe(b.y + NODE_H + 12)
  })

  it('routes an arrow that spans columns through slots of its own, never through a box', () => {
    const nodes = [node('s', 'source'), node('x', 'unit'), node('y', 'unit'), node('j', 'sink')]
    const l = pipelineLayout(nodes, [['s', 'x'], ['x', 'y'], ['y', 'j'], ['s', 'j']])
    const long = l.edges.find((e) => e.from === 's' && e.to === 'j')
    if (!long) throw new Error('no arrow s → j')
    // Straight across columns 1 and 2, at heights no box of those columns covers.
    const passes = [...long.d.matchAll(/C[^C]*? (-?[\d.]+),(-?[\d.]+) L(-?[\d.]+),(-?[\d.]+)/g)].map((m) => ({ x: Number(m[1]), y: Number(m[2]) }))
    expect(passes).toHaveLength(2)
    for (const p of passes) {
      const boxes = l.nodes.filter((n) => n.x === p.x)
      expect(boxes).toHaveLength(1)
      for (const b of boxes) expect(p.y < b.y || p.y > b.y + NODE_H).toBe(true)
    }
  })

  it('is the same for the same graph in any order, ignores edges to unknown nodes, and ends on a cycle', () => {
    const one = pipelineLayout(SORTED.nodes, SORTED.edges)
    const other = pipelineLayout([...SORTED.nodes].reverse(), [...SORTED.edges].reverse())
    expect(other.nodes).toEqual(one.nodes)
    expect([...other.edges].reverse()).toEqual(one.edges)
    expect(pipelineLayout(SORTED.nodes, [...SORTED.edges, ['out', 'nowhere']]).edges).toHaveLength(SORTED.edges.length)
    const cyc = pipelineLayout([node('p', 'unit'), node('q', 'unit')], [['p', 'q'], ['q', 'p']])
    expect(cyc.nodes).toHaveLength(2)
    expect(cyc.edges).toHaveLength(2)
    expect(pipelineLayout([], [])).toEqual({ nodes: [], edges: [], width: 0, height: 0 })
  })
})
