import { describe, expect, it } from 'vitest'
import type { RelationView } from '../../api/types'
import { columns, layout } from './layout'

function rel(id: number, requirer: string, provider: string, iface = 'http'): RelationView {
  return { id, requirer, requirer_endpoint: 'r', provider, provider_endpoint: 'p', interface: iface, auto_reconfigure: true, created_at: 0 }
}

describe('relations layout', () => {
  it('puts a provider one column left of the services that require it', () => {
    const col = columns(['web', 'db', 'cache', 'lb', 'lonely'], [rel(1, 'web', 'db'), rel(2, 'web', 'cache'), rel(3, 'lb', 'web'), rel(4, 'cache', 'db')])
    expect(Object.fromEntries(col)).toEqual({ db: 0, lonely: 0, cache: 1, web: 2, lb: 3 })
  })

  it('ends on a cycle, and is the same for the same input', () => {
    const rels = [rel(1, 'a', 'b'), rel(2, 'b', 'c'), rel(3, 'c', 'a')]
    const one = layout(['c', 'a', 'b'], rels)
    expect(one.nodes.map((n) => n.name).sort()).toEqual(['a', 'b', 'c'])
    expect(one.edges).toHaveLength(3)
    expect(layout(['a', 'b', 'c'], [...rels].reverse())).toEqual({ ...one, edges: [...one.edges].reverse() })
  })

  it('draws a box for a service only a relation names, and spreads parallel arrows apart', () => {
    const l = layout(['web'], [rel(1, 'web', 'db', 'pgsql'), rel(2, 'web', 'db', 'metrics')])
    expect(l.nodes.map((n) => n.name)).toEqual(['db', 'web'])
    const [a, b] = l.edges
    expect(a?.d).not.toBe(b?.d)
    expect(a?.ly).not.toBe(b?.ly)
  })
})
