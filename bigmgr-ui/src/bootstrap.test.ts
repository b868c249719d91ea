import { describe, expect, it } from 'vitest'
import { machineIndex, parseMachines } from './bootstrap'

const KEY = 'SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s'

describe('parseMachines', () => {
  it('reads `name address[:port]` and `name=address[:port]`, each with an optional host key', () => {
    const text = [
      'm1 10.0.0.5',
      'm2=10.0.0.6:2222',
      `  m3   db3.example.com   ${KEY}  `,
      `m4 = 10.0.0.8:22 ${KEY}`,
      'm5 fe80::1',
      'm6 [fe80::2]:2200',
      'm7=[::1]',
    ].join('\n')
    const m = parseMachines(text)
    expect(m.problems).toEqual([])
    expect(m.hosts).toEqual([
      { name: 'm1', address: '10.0.0.5' },
      { name: 'm2', address: '10.0.0.6', ssh_port: 2222 },
      { name: 'm3', address: 'db3.example.com', host_key: KEY },
      { name: 'm4', address: '10.0.0.8', ssh_port: 22, host_key: KEY },
      { name: 'm5', address: 'fe80::1' },
      { name: 'm6', address: 'fe80::2', ssh_port: 2200 },
      { name: 'm7', address: '::1' },
    ])
    expect(m.lines).toEqual([1, 2, 3, 4, 5, 6, 7])
  })

  it('skips blank lines and # comments, and counts lines as typed (CRLF too)', () => {
    const m = parseMachines('# rack 1\r\n\r\nm1 10.0.0.5\r\n   \r\n# rack 2\r\nm2 10.0.0.6\r\n')
    expect(m.hosts).toEqual([
      { name: 'm1', address: '10.0.0.5' },
      { name: 'm2', address: '10.0.0.6' },
    ])
    expect(m.lines).toEqual([3, 6])
    expect(parseMachines('')).toEqual({ hosts: [], lines: [], problems: [] })
  })

  it('reports each bad line with its number, why and the text at fault, keeping the good ones', () => {
    const text = [
      'm1 10.0.0.5',
      '10.0.0.6',
      '=10.0.0.7',
      'm4=',
      'm5 10.0.0.9:ssh',
      'm6 10.0.0.10:0',
      'm7 10.0.0.11:65536',
      'm8 10.0.0.12 SHA256:short',
      'm9 10.0.0.13 ssh-ed25519',
      `m10 10.0.0.14 ${KEY} more words`,
      'm11 [fe80::3]:',
      'm12 :22',
      'm13 10.0.0.17',
    ].join('\n')
    const m = parseMachines(text)
    expect(m.problems).toEqual([
      { line: 2, reason: 'name', text: '10.0.0.6' },
      { line: 3, reason: 'name', text: '=10.0.0.7' },
      { line: 4, reason: 'address', text: 'm4' },
      { line: 5, reason: 'port', text: 'ssh' },
      { line: 6, reason: 'port', text: '0' },
      { line: 7, reason: 'port', text: '65536' },
      { line: 8, reason: 'hostKey', text: 'SHA256:short' },
      { line: 9, reason: 'hostKey', text: 'ssh-ed25519' },
      { line: 10, reason: 'extra', text: 'more words' },
      { line: 11, reason: 'port', text: '' },
      { line: 12, reason: 'address', text: 'm12' },
    ])
    expect(m.hosts.map((h) => h.name)).toEqual(['m1', 'm13'])
    expect(m.lines).toEqual([1, 13])
  })
})

describe('machineIndex', () => {
  it('reads the machine a problem field names', () => {
    expect(machineIndex('hosts[0].address')).toBe(0)
    expect(machineIndex('hosts[12].host_key')).toBe(12)
    expect(machineIndex('hosts[3]')).toBe(3)
    expect(machineIndex('hosts')).toBeNull()
    expect(machineIndex('ssh_key')).toBeNull()
    expect(machineIndex(undefined)).toBeNull()
  })
})
