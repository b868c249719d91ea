import { describe, expect, it } from 'vitest'
import { actionFor, can } from './roles'

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

describe('actionFor', () => {
  it('names what a suggested request needs; an unknown mutating one is an operator’s', () => {
    expect(actionFor('POST', '/jobs/12/retry')).toBe('control-job')
    expect(actionFor('post', '/clusters/demo/jobs')).toBe('submit-job')
    expect(actionFor('POST', '/clusters/demo/restart-stale')).toBe('change-config')
    expect(actionFor('DELETE', '/clusters/demo/hosts/h1')).toBe('remove-host')
    expect(actionFor('POST', '/clusters/demo/hosts/bootstrap')).toBe('bootstrap-hosts')
    expect(actionFor('GET', '/clusters/demo/advice')).toBe('read')
    expect(actionFor('PUT', '/somewhere/new')).toBe('change-config')
    expect(actionFor('POST', '/clusters/demo/plan')).toBe('read')
    expect(actionFor('POST', '/clusters/demo/apply')).toBe('apply-spec')
    expect(actionFor('POST', '/clusters/demo/pipelines')).toBe('manage-pipeline')
    expect(actionFor('DELETE', '/clusters/demo/pipelines/sorted')).toBe('manage-pipeline')
    expect(actionFor('POST', '/clusters/demo/pipelines/sorted/start')).toBe('control-pipeline')
    expect(actionFor('POST', '/clusters/demo/pipelines/sorted/stop?abort=true')).toBe('control-pipeline')
    expect(actionFor('POST', '/clusters/demo/pipelines/sorted/scale')).toBe('control-pipeline')
    expect(actionFor('GET', '/clusters/demo/pipelines/sorted/status')).toBe('read')
  })
})
