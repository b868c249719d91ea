import { describe, expect, it } from 'vitest'
import { can } from './roles'

describe('can', () => {
  it('allows what the server listed for the user, and nothing else', () => {
    const viewer = { name: 'v', role: 'viewer' as const, may: ['read', 'login'] }
    const operator = { name: 'o', role: 'operator' as const, may: ['read', 'submit-job', 'control-job'] }
    expect(can(viewer, 'read')).toBe(true)
    expect(can(viewer, 'control-job')).toBe(false)
    expect(can(operator, 'control-job')).toBe(true)
    expect(can(operator, 'create-join-token')).toBe(false)
  })

  it('allows nothing to an unknown user', () => {
    expect(can(null, 'read')).toBe(false)
    expect(can(undefined, 'read')).toBe(false)
  })
})
