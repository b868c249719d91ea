import { describe, expect, it } from 'vitest'
import { jobsIn, requestText } from './actions'

const job = { id: 7, cluster: 'demo', command: 'restart', target: { service: 'zk' }, options: {}, state: 'QUEUED', created_at: 1 }

describe('suggested requests', () => {
  it('are shown as sent: method, full path, pretty JSON body', () => {
    expect(requestText({ title: 'retry', method: 'post', path: '/jobs/12/retry', body: null })).toBe('POST /api/v1/jobs/12/retry')
    expect(requestText({ title: 's', method: 'POST', path: '/clusters/demo/jobs', body: { command: 'start' } })).toBe(
      'POST /api/v1/clusters/demo/jobs\n{\n  "command": "start"\n}',
    )
  })

  it('find the jobs an answer made', () => {
    expect(jobsIn(job).map((j) => j.id)).toEqual([7])
    expect(jobsIn([job, { id: 8 }, { ...job, id: 9 }]).map((j) => j.id)).toEqual([7, 9])
    expect(jobsIn(undefined)).toEqual([])
    expect(jobsIn({ name: 'x' })).toEqual([])
  })
})
