import { afterEach, describe, expect, it } from 'vitest'
import { flushPromises, type VueWrapper } from '@vue/test-utils'
import { defineComponent, h } from 'vue'
import type { AlertView } from '../api/types'
import { fakeServer } from '../testing/configServer'
import { eventStream } from '../testing/events'
import { mountView, unmountView } from '../testing/mountView'
import AlertsPanel from './AlertsPanel.vue'

const NOW = Date.now()
const alert = (id: number, state: AlertView['state'], more: Partial<AlertView> = {}): AlertView => ({
  id,
  definition: 'unit_down',
  state,
  text: `alert ${id}`,
  host: 'h1',
  service: null,
  unit: null,
  since: NOW - 60_000,
  checked_at: NOW,
  ...more,
})

// Firing, as the server lists them (by id), and every alert (OK ones too).
const firing: AlertView[] = [
  alert(1, 'WARNING', { definition: 'unit_stale', service: 'hello', unit: 'hello_server@h1' }),
  alert(2, 'CRITICAL', { definition: 'host_lost', since: NOW - 3_600_000 }),
  alert(3, 'UNKNOWN', { host: 'h2' }),
  alert(4, 'CRITICAL', { service: 'hello', unit: 'hello_server@h2', host: 'h2', since: NOW - 5_000 }),
  // From an older server: no `silenced` at all.
  { id: 5, definition: 'unit_down', state: 'WARNING', text: 'alert 5', host: 'h1', since: NOW - 120_000, checked_at: NOW },
  alert(6, 'CRITICAL', { host: 'h3', silenced: 'host h3 is in maintenance until 2026-12-06 12:00 UTC (by admin: disk swap)' }),
]
const all: AlertView[] = [...firing, alert(7, 'OK', { host: 'h1' })]

const routes = [
  { path: '/panel', name: 'panel' },
  { path: '/clusters/:cluster/hosts/:host', name: 'host' },
  { path: '/clusters/:cluster/services/:service', name: 'service' },
]

/** The panel's props in the test that mounts it. */
let panelProps: { host?: string; service?: string; live?: boolean } = {}
const Page = defineComponent({ render: () => h(AlertsPanel, { cluster: 'demo', ...panelProps }) })

let wrapper: VueWrapper | null = null
afterEach(unmountView)

function mountPanel(props: { host?: string; service?: string; live?: boolean }): Promise<{ w: VueWrapper; server: ReturnType<typeof fakeServer>; events: ReturnType<typeof eventStream> }> {
  const events = eventStream()
  const server = fakeServer({
    'GET /clusters/demo/alerts': (c) => (c.query.get('firing') === 'true' ? firing : all),
    'GET /clusters/demo/events': (c) => events.respond(c.signal),
  })
  panelProps = props
  return mountView(Page, { role: 'viewer', fetch: server.fetch, routes, at: '/panel' }).then((w) => {
    wrapper = w
    return { w, server, events }
  })
}

const ids = (w: VueWrapper): number[] => w.findAll('[data-testid^="alert-"][data-state]').map((r) => Number(r.attributes('data-testid')?.slice('alert-'.length)))

describe('AlertsPanel', () => {
  it("lists the cluster's firing alerts, critical first and the newest first within a state, with counts and links", async () => {
    const { w, server } = await mountPanel({})
    expect(server.find('GET', '/clusters/demo/alerts').map((c) => c.query.get('firing'))).toEqual(['true'])
    expect(ids(w)).toEqual([4, 6, 2, 1, 5, 3])
    expect(w.get('[data-testid="alert-count-CRITICAL"]').text()).toBe('3 critical')
    expect(w.get('[data-testid="alert-count-WARNING"]').text()).toBe('2 warnings')
    expect(w.get('[data-testid="alert-count-UNKNOWN"]').text()).toBe('1 unknown')
    const row = w.get('[data-testid="alert-4"]')
    expect(row.text()).toContain('hello / hello_server@h2')
    expect(row.get('a').attributes('href')).toBe('/clusters/demo/services/hello')
    expect(w.get('[data-testid="alert-2"] a').attributes('href')).toBe('/clusters/demo/hosts/h1')
    expect(w.get('[data-testid="alert-2"]').text()).toContain('1 h ago')
    expect(w.get('[data-testid="alert-4"]').text()).toMatch(/[56] s ago/)
  })

  it("keeps a host's alerts only, and a service's", async () => {
    const host = await mountPanel({ host: 'h1' })
    expect(ids(host.w)).toEqual([2, 1, 5])
    // On the host's page the host is no link; the service is.
    expect(host.w.get('[data-testid="alert-2"]').find('a').exists()).toBe(false)
    expect(host.w.get('[data-testid="alert-1"] a').attributes('href')).toBe('/clusters/demo/services/hello')
    unmountView()
    const service = await mountPanel({ service: 'hello' })
    expect(ids(service.w)).toEqual([4, 1])
    expect(service.w.get('[data-testid="alert-4"]').find('a').exists()).toBe(false)
    expect(service.w.find('[data-testid="alert-count-UNKNOWN"]').exists()).toBe(false)
  })

  it('marks a silenced alert, with why as its tooltip', async () => {
    const { w } = await mountPanel({})
    const badges = w.findAll('[data-testid="alert-silenced"]')
    expect(badges).toHaveLength(1)
    expect(w.get('[data-testid="alert-6"] [data-testid="alert-silenced"]').attributes('title')).toBe(
      'host h3 is in maintenance until 2026-12-06 12:00 UTC (by admin: disk swap)',
    )
    expect(w.get('[data-testid="alert-5"]').find('[data-testid="alert-silenced"]').exists()).toBe(false)
  })

  it('reads every alert with "show OK too", OK last', async () => {
    const { w, server } = await mountPanel({ host: 'h1' })
    await w.get('[data-testid="alerts-show-ok"]').trigger('click')
    await flushPromises()
    expect(server.find('GET', '/clusters/demo/alerts').map((c) => c.query.get('firing'))).toEqual(['true', 'false'])
    expect(ids(w)).toEqual([2, 1, 5, 7])
    expect(w.get('[data-testid="alert-7"]').attributes('data-state')).toBe('OK')
  })

  it('says when nothing fires', async () => {
    const server = fakeServer({ 'GET /clusters/demo/alerts': () => [] })
    panelProps = {}
    wrapper = await mountView(Page, { role: 'viewer', fetch: server.fetch, routes, at: '/panel' })
    expect(wrapper.get('[data-testid="alerts-none"]').text()).toBe('No alert is firing.')
    expect(wrapper.find('[data-testid^="alert-count-"]').exists()).toBe(false)
  })

  it("re-reads when the cluster's event stream names alerts, not for other topics", async () => {
    const { server, events } = await mountPanel({})
    const reads = (): number => server.find('GET', '/clusters/demo/alerts').length
    expect(reads()).toBe(1)
    expect(events.open()).toBe(1)
    events.changed('hosts', 'jobs')
    await flushPromises()
    expect(reads()).toBe(1)
    events.changed('units', 'alerts')
    await flushPromises()
    expect(reads()).toBe(2)
    unmountView()
    await flushPromises()
    expect(events.open()).toBe(0)
  })

  it('follows no stream when not live (the overview polls)', async () => {
    const { server } = await mountPanel({ live: false })
    expect(server.find('GET', '/clusters/demo/events')).toHaveLength(0)
  })
})
