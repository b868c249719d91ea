import { afterEach, describe, expect, it, vi } from 'vitest'
import { flushPromises, mount } from '@vue/test-utils'
import { defineComponent, h } from 'vue'
import { ApiError } from './api/client'
import { usePoll } from './composables'

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
