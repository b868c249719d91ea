import { describe, expect, it, vi } from 'vitest'
import { flushPromises } from '@vue/test-utils'
import type { HostSeriesView, HostView, Role } from '../api/types'
import { mountView } from '../testing/mountView'
import HostsView from './HostsView.vue'

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

const host: HostView = {
  id: 1,
  name: 'h1',
  cluster: 'demo',
  address: '127.0.0.2',
  state: 'LOST',
  last_heartbeat: null,
  units: [{ id: 1, service: 'hello', component: 'hello_server', state: 'STARTED' }],
}

function mountAs(role: Role, answer: Response, metrics: Response = json([]), urls: string[] = []) {
  return mountView(HostsView, {
    role,
    fetch: (input) => {
      const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url
      urls.push(url)
      return Promise.resolve((url.includes('/metrics') ? metrics : answer).clone())
    },
    routes: [
      { path: '/clusters/:cluster/hosts', name: 'hosts' },
      { path: '/clusters/:cluster/hosts/bootstrap', name: 'hosts-bootstrap' },
      { path: '/clusters/:cluster/hosts/:host', name: 'host' },
    ],
    at: '/clusters/demo/hosts',
  })
}

const json = (v: unknown) => new Response(JSON.stringify(v), { headers: { 'Content-Type': 'application/json' } })
const ok = () => json({ items: [host], next: null })

describe('HostsView', () => {
  it('offers "add host" to an admin only', async () => {
    const admin = await mountAs('admin', ok())
    expect(admin.find('[data-testid="add-host"]').exists()).toBe(true)
    expect(admin.get('[data-testid="hosts-count"]').text()).toBe('1 host')
    admin.unmount()
    const operator = await mountAs('operator', ok())
    expect(operator.find('[data-testid="add-host"]').exists()).toBe(false)
    operator.unmount()
  })

  it('offers "add hosts over SSH" to an admin only, linking to its page', async () => {
    const admin = await mountAs('admin', ok())
    const link = admin.get('[data-testid="add-hosts-ssh"]')
    expect(link.attributes('href')).toBe('/clusters/demo/hosts/bootstrap')
    expect(link.text()).toBe('Add hosts over SSH')
    await link.trigger('click')
    await flushPromises()
    expect(admin.vm.$route.name).toBe('hosts-bootstrap')
    admin.unmount()
    for (const role of ['operator', 'viewer'] as const) {
      const w = await mountAs(role, ok())
      expect(w.find('[data-testid="hosts-page"]').exists()).toBe(true)
      expect(w.find('[data-testid="add-hosts-ssh"]').exists()).toBe(false)
      w.unmount()
    }
  })

  it('shows a refused call with the server\'s detail', async () => {
    const refused = new Response(
      JSON.stringify({ type: 'urn:bigmgr:problem:permission-denied', title: 'Forbidden', status: 403, detail: 'viewer may not read demo' }),
      { status: 403, headers: { 'Content-Type': 'application/problem+json' } },
    )
    const w = await mountAs('viewer', refused)
    expect(w.get('[data-testid="problem"]').attributes('data-status')).toBe('403')
    expect(w.get('[data-testid="problem-detail"]').text()).toBe('viewer may not read demo')
    w.unmount()
  })

  it('reads every host\'s CPU and memory series in one call for the cluster, and draws them for the rows on screen', async () => {
    const hosts = Array.from({ length: 1000 }, (_, i) => ({ ...host, id: i + 1, name: `h${i + 1}`, state: 'ONLINE' as const }))
    const series: HostSeriesView[] = [
      { host: 'h1', at: [1, 2], cpu_percent: [10, 90], memory_percent: [40, 60] },
      { host: 'h2', at: [1], cpu_percent: [5], memory_percent: [5] },
    ]
    const urls: string[] = []
    const w = await mountAs('viewer', json({ items: hosts, next: null }), json(series), urls)
    expect(urls.filter((u) => u.includes('/metrics'))).toEqual(['/api/v1/clusters/demo/metrics?window=900'])
    expect(w.get('[data-testid="sparkline-cpu-h1"] polyline').attributes('points')).toBe('0,14.4 64,1.6')
    expect(w.get('[data-testid="sparkline-memory-h1"]').attributes('aria-label')).toContain('now 60%')
    expect(w.get('[data-testid="sparkline-cpu-h2"]').text()).toBe('no data')
    expect(w.get('[data-testid="sparkline-memory-h3"]').text()).toBe('no data')
    // 1 000 hosts, but only the rows that fit the viewport draw sparklines.
    const drawn = w.findAll('[data-testid^="sparkline-cpu-"]').length
    expect(drawn).toBeGreaterThan(3)
    expect(drawn).toBeLessThan(50)
    w.unmount()
  })
})
