import { describe, expect, it } from 'vitest'
import { can } from './roles'

describe('can', () => {
  it('orders viewer < operator < admin', () => {
    const v = { name: 'v', role: 'viewer' as const }
    const o = { name: 'o', role: 'operator' as const }
    const a = { name: 'a', role: 'admin' as const }
    expect([v, o, a].map((m) => can(m, 'read'))).toEqual([true, true, true])
    expect([v, o, a].map((m) => can(m, 'control-job'))).toEqual([false, true, true])
    expect([v, o, a].map((m) => can(m, 'create-join-token'))).toEqual([false, false, true])
  })

  it('allows nothing to an unknown user or role', () => {
    expect(can(null, 'read')).toBe(false)
    expect(can({ name: 'x', role: 'root' as never }, 'read')).toBe(false)
  })
})
