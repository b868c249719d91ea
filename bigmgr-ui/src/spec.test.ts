import { describe, expect, it } from 'vitest'
import type { Plan } from './api/types'
import { emptyPlan } from './testing/spec'
import { lineRange, planCounts, planEmpty, planLines, planRemovals, secretRefs, specCluster, valueText } from './spec'

describe('secretRefs', () => {
  it('finds env and file references once each, in order, keyed as the server wants them', () => {
    const text = [
      'cluster = "prod"',
      '[services.db]',
      'configs = { "db.conf" = { password = { env = "DB_PASS" }, key = {file="/etc/bm/key.pem"} } }',
      "other = { env = 'LITERAL' }",
      'again = { env = "DB_PASS" }',
      '# commented = { env = "NOT_THIS" }',
      'x = "a # b" # trailing = { env = "NOR_THIS" }',
      'escaped = { file = "/tmp/a\\"b" }',
      'not = { env = "" }',
      'two = { env = "A", file = "/b" }',
    ].join('\n')
    expect(secretRefs(text)).toEqual([
      { key: 'env:DB_PASS', kind: 'env', name: 'DB_PASS' },
      { key: 'file:/etc/bm/key.pem', kind: 'file', name: '/etc/bm/key.pem' },
      { key: 'env:LITERAL', kind: 'env', name: 'LITERAL' },
      { key: 'file:/tmp/a"b', kind: 'file', name: '/tmp/a"b' },
    ])
  })

  it('finds nothing in a spec without references', () => {
    expect(secretRefs('cluster = "prod"\n[services.zk]\nconfigs = { "zoo.cfg" = { tickTime = 2000 } }\n')).toEqual([])
  })
})

describe('specCluster', () => {
  it('reads the top-level cluster name, not one inside a table', () => {
    expect(specCluster('# a spec\ncluster = "prod"\n[hosts]\n')).toBe('prod')
    expect(specCluster("cluster = 'lit'\n")).toBe('lit')
    expect(specCluster('[services.x]\ncluster = "no"\n')).toBeNull()
    expect(specCluster('')).toBeNull()
  })
})

describe('lineRange', () => {
  it('gives the offsets of a 1-based line', () => {
    const text = 'ab\ncde\n\nf'
    expect(lineRange(text, 1)).toEqual([0, 2])
    expect(lineRange(text, 2)).toEqual([3, 6])
    expect(lineRange(text, 3)).toEqual([7, 7])
    expect(lineRange(text, 4)).toEqual([8, 9])
    expect(lineRange(text, 9)).toEqual([9, 9])
  })
})

describe('plans', () => {
  it('prints every kind of change as the CLI does, in its order', () => {
    const p: Plan = {
      create_cluster: true,
      hosts_to_add: [{ name: 'h4', address: '10.0.0.14' }],
      services_to_add: ['spark'],
      services_to_remove: ['old'],
      units_to_add: [{ service: 'spark', component: 'spark_master', host: 'h1', why: 'h1: 12 points, the least' }],
      units_to_remove: [{ service: 'old', component: 'old_server', host: 'h2' }],
      configs: [
        { service: 'zk', config_type: 'zoo.cfg', host: null, property: 'tickTime', from: 2000, to: 3000 },
        { service: 'zk', config_type: 'zookeeper-env', host: 'h3', property: 'heapSize', from: null, to: '512m' },
      ],
      policies: [{ service: 'zk', policy: 'healing', from: { restart: false }, to: { restart: true, grace: '30s' } }],
      relations_to_add: [{ requirer: 'spark', requirer_endpoint: 'zookeeper', provider: 'zk', provider_endpoint: 'client' }],
      relations_to_remove: [{ requirer: 'old', requirer_endpoint: 'zk', provider: 'zk', provider_endpoint: 'client' }],
      jobs: [
        { command: 'stop', service: 'old', hosts: ['h2'], why: 'old goes' },
        { command: 'reconfigure', service: 'zk', hosts: [], why: '2 property change(s)' },
      ],
      problems: ['service x is a b in the cluster'],
      kept: ['service y'],
    }
    expect(planLines(p, 'prod', '(unset)').map((l) => (l.why ? [l.sign, l.key, l.params, l.why] : [l.sign, l.key, l.params]))).toEqual([
      ['+', 'cluster', { cluster: 'prod' }],
      ['+', 'host', { name: 'h4', address: '10.0.0.14' }],
      ['+', 'service', { name: 'spark' }],
      ['-', 'service', { name: 'old' }],
      ['+', 'unit', { service: 'spark', component: 'spark_master', host: 'h1' }, 'h1: 12 points, the least'],
      ['-', 'unit', { service: 'old', component: 'old_server', host: 'h2' }],
      ['~', 'config', { service: 'zk', type: 'zoo.cfg', property: 'tickTime', host: '', from: '2000', to: '3000' }],
      ['~', 'configOn', { service: 'zk', type: 'zookeeper-env', property: 'heapSize', host: 'h3', from: '(unset)', to: '"512m"' }],
      ['~', 'policy', { service: 'zk', policy: 'healing', from: '{"restart":false}', to: '{"restart":true,"grace":"30s"}' }],
      ['+', 'relation', { requirer: 'spark', requirerEndpoint: 'zookeeper', provider: 'zk', providerEndpoint: 'client' }],
      ['-', 'relation', { requirer: 'old', requirerEndpoint: 'zk', provider: 'zk', providerEndpoint: 'client' }],
      ['>', 'jobOn', { command: 'stop', service: 'old', hosts: 'h2', why: 'old goes' }],
      ['>', 'job', { command: 'reconfigure', service: 'zk', hosts: '', why: '2 property change(s)' }],
      ['=', 'kept', { what: 'service y' }],
      ['!', 'problem', { problem: 'service x is a b in the cluster' }],
    ])
    expect(planEmpty(p)).toBe(false)
    expect(planRemovals(p)).toBe(3)
    expect(planCounts(p)).toEqual({
      hosts: 1,
      servicesAdded: 1,
      servicesRemoved: 1,
      unitsAdded: 1,
      unitsRemoved: 1,
      configs: 2,
      policies: 1,
      relationsAdded: 1,
      relationsRemoved: 1,
      jobs: 2,
    })
  })

  it('takes a plan with only kept things and problems as empty', () => {
    expect(planEmpty({ ...emptyPlan(), kept: ['service y'], problems: ['p'] })).toBe(true)
    expect(planEmpty({ ...emptyPlan(), create_cluster: true })).toBe(false)
    expect(planEmpty({ ...emptyPlan(), policies: [{ service: 'zk', policy: 'healing', from: {}, to: { restart: true } }] })).toBe(false)
    // A server from before spec policies sends none.
    const older = emptyPlan()
    delete older.policies
    expect(planEmpty(older)).toBe(true)
    expect(planLines(older, 'prod', '-')).toEqual([])
  })

  it('shows values as JSON, and an absent one as unset', () => {
    expect(valueText('a', '-')).toBe('"a"')
    expect(valueText({ a: [1, true] }, '-')).toBe('{"a":[1,true]}')
    expect(valueText(null, '-')).toBe('-')
    expect(valueText(undefined, '-')).toBe('-')
  })
})
