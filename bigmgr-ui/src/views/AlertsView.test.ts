import { afterEach, describe, expect, it, vi } from 'vitest'
import { flushPromises } from '@vue/test-utils'
import type { AlertChangeView } from '../api/types'
import { fakeServer } from '../testing/configServer'
import { eventStream } from '../testing/events'
import { mountView, unmountView } from '../testing/mountView'
import AlertsView from './AlertsView.vue'

// happy-dom lays nothing out, so the virtualised table would show no row: a ResizeObserver
// that reports a 400 px viewport to whatever observes makes it render the rows that fit.
vi.hoisted(() => {
  class FixedSize {
    private readonly cb: (entries: unknown[]) => void
    constructor(cb: (entries: unknown[]) => void) {
      this.cb = cb
    }
    observe(target: Element): void {
      queueMicrotask(() => {
        this.cb([{ target, contentRect: { width: 1200, height: 400 }, borderBoxSize: [{ blockSize: 400, inlineSize: 1200 }] }])
      })
    }
    unobserve(): void {
      // nothing to stop
    }
    disconnect(): void {
      // nothing to stop
    }
  }
  globalThis.ResizeObserver = FixedSize as unknown as typeof ResizeObserver
})

const change = (id: number): AlertChangeView => ({
  id,
  alert: 1,
  definition: 'host_lost',
  from: id % 2 ? 'OK' : 'CRITICAL',
  to: id % 2 ? 'CRITICAL' : 'OK',
  text: `change ${id}`,
  host: 'h1',
  service: null,
  unit: null,
  at: id * 1000,
})

afterEach(unmountView)

describe('AlertsView', () => {
  it('reads the history a page at a time after the last change seen, shows it newest first, and reads only what is new on an alerts event', async () => {
    // 1 001 changes: a full page of 1 000, then one.
    const all = Array.from({ length: 1001 }, (_, i) => change(i + 1))
    const events = eventStream()
    const server = fakeServer({
      'GET /clusters/demo/alerts': () => [],
      'GET /clusters/demo/alerts/history': (c) => {
        const after = Number(c.query.get('after') ?? 0)
        return all.filter((x) => x.id > after).slice(0, Number(c.query.get('limit')))
      },
      'GET /clusters/demo/events': (c) => events.respond(c.signal),
    })
    const w = await mountView(AlertsView, { role: 'viewer', fetch: server.fetch, routes: [{ path: '/clusters/:cluster/alerts', name: 'alerts' }], at: '/clusters/demo/alerts' })
    await flushPromises()
    const reads = (): (string | null)[] => server.find('GET', '/clusters/demo/alerts/history').map((c) => c.query.get('after'))
    expect(reads()).toEqual([null, '1000'])
    expect(server.find('GET', '/clusters/demo/alerts/history')[0]?.query.get('limit')).toBe('1000')
    const shown = (): string[] => w.findAll('[data-testid^="alert-change-"]').map((r) => r.attributes('data-testid') ?? '')
    expect(shown().slice(0, 3)).toEqual(['alert-change-1001', 'alert-change-1000', 'alert-change-999'])
    all.push(change(1002))
    events.changed('alerts')
    await flushPromises()
    expect(reads()).toEqual([null, '1000', '1001'])
    expect(shown().slice(0, 2)).toEqual(['alert-change-1002', 'alert-change-1001'])
    expect(w.get('[data-testid="alert-history"]').text()).toContain('change 1002')
    // The panel of what fires now shares the page's one stream.
    expect(server.find('GET', '/clusters/demo/events')).toHaveLength(1)
  })

  it('says when no alert has changed yet', async () => {
    const server = fakeServer({ 'GET /clusters/demo/alerts': () => [], 'GET /clusters/demo/alerts/history': () => [] })
    const w = await mountView(AlertsView, { role: 'viewer', fetch: server.fetch, routes: [{ path: '/clusters/:cluster/alerts', name: 'alerts' }], at: '/clusters/demo/alerts' })
    expect(w.get('[data-testid="alert-history-none"]').text()).toBe('No alert has changed yet.')
  })
})
