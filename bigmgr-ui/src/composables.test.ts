import { afterEach, describe, expect, it, vi } from 'vitest'
import { flushPromises, mount } from '@vue/test-utils'
import { defineComponent, h, ref } from 'vue'
import { ApiError, configureClient } from './api/client'
import { attempt, followCluster, listenCluster, usePoll } from './composables'
import { fakeServer } from './testing/configServer'
import { eventStream } from './testing/events'

afterEach(() => {
  vi.useRealTimers()
})

describe('usePoll', () => {
  it('refreshes on its interval, keeps the last good data when a refresh fails, and stops when unmounted', async () => {
    vi.useFakeTimers()
    const problem = { type: 'urn:bigmgr:problem:internal', title: 'Internal Server Error', status: 500, detail: 'store down' }
    const fn = vi
      .fn<() => Promise<number>>()
      .mockResolvedValueOnce(1)
      .mockRejectedValueOnce(new ApiError(problem))
      .mockResolvedValueOnce(3)
    let poll!: ReturnType<typeof usePoll<number>>
    const C = defineComponent({
      setup() {
        poll = usePoll(fn, { every: 1000 })
        return () => h('div')
      },
    })
    const w = mount(C)
    await flushPromises()
    expect(poll.data.value).toBe(1)
    await vi.advanceTimersByTimeAsync(1000)
    expect(poll.data.value).toBe(1)
    expect(poll.error.value?.problem).toEqual(problem)
    await vi.advanceTimersByTimeAsync(1000)
    expect(poll.data.value).toBe(3)
    expect(poll.error.value).toBeNull()
    w.unmount()
    await vi.advanceTimersByTimeAsync(5000)
    expect(fn).toHaveBeenCalledTimes(3)
  })
})

describe('attempt', () => {
  it('clears the error, keeps an ApiError, rethrows anything else, and brackets the run with busy', async () => {
    const problem = { type: 'urn:bigmgr:problem:conflict', title: 'Conflict', status: 409, detail: 'busy' }
    const error = ref<ApiError | null>(new ApiError(problem))
    const busy: boolean[] = []
    expect(await attempt(error, () => Promise.resolve(), (on) => busy.push(on))).toBe(true)
    expect(error.value).toBeNull()
    expect(busy).toEqual([true, false])
    expect(await attempt(error, () => Promise.reject(new ApiError(problem)))).toBe(false)
    expect(error.value?.problem).toEqual(problem)
    await expect(attempt(error, () => Promise.reject(new Error('bug')), (on) => busy.push(on))).rejects.toThrow('bug')
    expect(error.value).toBeNull()
    expect(busy).toEqual([true, false, true, false])
  })
})

describe('followCluster', () => {
  it('calls back when an event names a topic of the page, not for other topics', async () => {
    const enc = new TextEncoder()
    let push!: (text: string) => void
    let close!: () => void
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        push = (text) => {
          c.enqueue(enc.encode(text))
        }
        close = () => {
          c.close()
        }
      },
    })
    const paths: string[] = []
    configureClient({
      getToken: () => 't',
      fetch: (input) => {
        paths.push(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url)
        return Promise.resolve(new Response(body, { status: 200, headers: { 'content-type': 'text/event-stream' } }))
      },
    })
    const changed = vi.fn()
    const stop = new AbortController()
    const done = followCluster({ cluster: () => 'my cluster', topics: ['hosts', 'units'] }, changed, stop.signal)
    await flushPromises()
    expect(paths[0]).toContain('/api/v1/clusters/my%20cluster/events')
    push('event: changed\ndata: {"topics":["jobs"]}\n\n')
    await flushPromises()
    expect(changed).not.toHaveBeenCalled()
    push('event: changed\ndata: {"topics":["services","units"]}\n\n')
    await flushPromises()
    expect(changed).toHaveBeenCalledTimes(1)
    push(': keep-alive\n\n')
    await flushPromises()
    expect(changed).toHaveBeenCalledTimes(1)
    // Leaving the page aborts the request (a real fetch then ends the body).
    stop.abort()
    close()
    await done
    expect(changed).toHaveBeenCalledTimes(1)
  })

  it('ends quietly when the server refuses the stream (the page shows its own error)', async () => {
    const problem = { type: 'urn:bigmgr:problem:not-found', title: 'Not Found', status: 404, detail: "cluster 'x' not found" }
    configureClient({
      getToken: () => 't',
      fetch: () =>
        Promise.resolve(new Response(JSON.stringify(problem), { status: 404, headers: { 'content-type': 'application/problem+json' } })),
    })
    const changed = vi.fn()
    await followCluster({ cluster: () => 'x', topics: ['hosts'] }, changed, new AbortController().signal)
    expect(changed).not.toHaveBeenCalled()
  })
})

describe('listenCluster', () => {
  it('shares one stream per cluster between its lists, each called for its own topics, and closes it after the last', async () => {
    const events = eventStream()
    const server = fakeServer({ 'GET /clusters/demo/events': (c) => events.respond(c.signal) })
    configureClient({ getToken: () => 't', fetch: server.fetch })
    const hosts = vi.fn()
    const alerts = vi.fn()
    const stopHosts = listenCluster({ cluster: () => 'demo', topics: ['hosts', 'units'] }, hosts)
    const stopAlerts = listenCluster({ cluster: () => 'demo', topics: ['alerts'] }, alerts)
    await flushPromises()
    expect(server.find('GET', '/clusters/demo/events')).toHaveLength(1)
    events.changed('alerts')
    await flushPromises()
    expect([hosts.mock.calls.length, alerts.mock.calls.length]).toEqual([0, 1])
    events.changed('units', 'alerts')
    await flushPromises()
    expect([hosts.mock.calls.length, alerts.mock.calls.length]).toEqual([1, 2])
    stopHosts()
    events.changed('hosts', 'alerts')
    await flushPromises()
    expect([hosts.mock.calls.length, alerts.mock.calls.length]).toEqual([1, 3])
    expect(events.open()).toBe(1)
    stopAlerts()
    await flushPromises()
    expect(events.open()).toBe(0)
    // The next list opens a new stream.
    const again = listenCluster({ cluster: () => 'demo', topics: ['alerts'] }, alerts)
    await flushPromises()
    expect(server.find('GET', '/clusters/demo/events')).toHaveLength(2)
    again()
  })
})
