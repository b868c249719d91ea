import { describe, expect, it, vi } from 'vitest'
import { JobLive } from './jobLive'
import type { FollowOptions } from '../api/sse'
import type { JobDetailView, LogLineView } from '../api/types'

function job(state: JobDetailView['state'], taskState: 'RUNNING' | 'SUCCEEDED' = 'RUNNING'): JobDetailView {
  return {
    id: 1,
    cluster: 'demo',
    command: 'deploy',
    target: 'cluster',
    options: {},
    state,
    created_at: 0,
    stages: [
      { id: 1, name: 'INSTALL a', component: 'a', command: 'install', state: 'RUNNING', after: [], tasks: [{ id: 10, host: 'h1', state: taskState, attempt: 1 }] },
    ],
  }
}

const line = (seq: number, text: string): LogLineView => ({ attempt: 1, seq, stream: 'stdout', at: 0, line: text })

describe('JobLive', () => {
  it('re-reads the job on each connection, applies events, and de-duplicates log lines', async () => {
    const loads = [job('RUNNING'), job('RUNNING'), job('SUCCEEDED', 'SUCCEEDED')]
    const load = vi.fn(() => Promise.resolve(loads.shift() ?? job('SUCCEEDED', 'SUCCEEDED')))
    const loadLog = vi.fn(() => Promise.resolve([line(0, 'a'), line(1, 'b')]))
    const follow = async (_path: string, o: FollowOptions): Promise<void> => {
      await o.onConnect?.(0)
      expect(live.state.connection).toBe('live')
      await live.watchLog(10)
      o.onEvent({ event: 'task', data: '{"id":10,"state":"FAILED"}' })
      expect(live.state.job?.stages[0]?.tasks[0]?.state).toBe('FAILED')
      o.onEvent({ event: 'log', data: JSON.stringify({ task: 10, ...line(1, 'b') }) })
      o.onEvent({ event: 'log', data: JSON.stringify({ task: 10, ...line(2, 'c') }) })
      expect(live.state.logs[10]?.map((l) => l.line)).toEqual(['a', 'b', 'c'])
      // The connection drops and comes back: the job and the log are read again.
      o.onRetry?.(10, new Error('lost'))
      expect(live.state.connection).toBe('retrying')
      await o.onConnect?.(1)
      expect(live.state.logs[10]?.map((l) => l.line)).toEqual(['a', 'b', 'c'])
      o.onEvent({ event: 'end', data: '{"id":1,"state":"SUCCEEDED"}' })
      expect(o.finished()).toBe(true)
    }
    const live = new JobLive(1, { load, loadLog, follow, refreshDelay: 0 })
    await live.start()
    expect(live.state.job?.state).toBe('SUCCEEDED')
    expect(live.state.connection).toBe('ended')
    expect(load).toHaveBeenCalledTimes(2)
    live.stop()
  })

  it('shows a refused stream as a failure with the problem', async () => {
    const { ApiError } = await import('../api/client')
    const problem = { type: 'urn:bigmgr:problem:not-found', title: 'Not Found', status: 404, detail: 'no job 1' }
    const live = new JobLive(1, {
      follow: () => Promise.reject(new ApiError(problem)),
      load: () => Promise.resolve(job('RUNNING')),
    })
    await live.start()
    expect(live.state.connection).toBe('failed')
    expect(live.state.error).toEqual(problem)
  })
})
