import { afterEach, describe, expect, it, vi } from 'vitest'
import { flushPromises, mount } from '@vue/test-utils'
import { defineComponent, h, ref } from 'vue'
import { ApiError } from './api/client'
import { attempt, usePoll } from './composables'

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
