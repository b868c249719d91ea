import { afterEach, describe, expect, it } from 'vitest'
import { flushPromises, type VueWrapper } from '@vue/test-utils'
import type { AlertView, Finding, ClusterView, HostView, JobView, UnitStatusView } from '../api/types'
import { mountView, unmountView } from '../testing/mountView'
import OverviewView from './OverviewView.vue'

const clusters: ClusterView[] = [{ id: 1, name: 'demo', created_at: 0 }]
const hosts: HostView[] = [
  {
    id: 1,
    name: 'h1',
    cluster: 'demo',
    address: '10.0.0.1',
    state: 'LOST',
    units: [
      { id: 5, service: 'hello', component: 'server', state: 'FAILED' },
      { id: 6, service: 'hello', component: 'client', state: 'STARTED', health: { healthy: false, message: 'port closed', checked_at: 0 } },
    ],
  },
]
const units: UnitStatusView[] = [
  { id: 7, service: 'hello', component: 'server', host: 'h2', state: 'STARTED', desired_version: 2, applied_version: 1, stale: true },
]
const failed: JobView[] = [
  { id: 42, cluster: 'demo', command: 'restart', target: 'cluster', options: {}, state: 'FAILED', created_at: 0 },
]

const alerts: AlertView[] = [
  { id: 1, definition: 'host_lost', state: 'CRITICAL', text: 'h1 is lost', host: 'h1', service: null, unit: null, since: 0, checked_at: 0, silenced: null },
  { id: 2, definition: 'unit_down', state: 'CRITICAL', text: 'down', host: 'h1', service: 'hello', unit: 'server@h1', since: 0, checked_at: 0, silenced: null },
  { id: 3, definition: 'unit_stale', state: 'WARNING', text: 'stale', host: 'h2', service: 'hello', unit: 'server@h2', since: 0, checked_at: 0, silenced: 'host h2 is in maintenance' },
]

const advice: Finding[] = [
  { rule: 'host.lost', severity: 'CRITICAL', title: 'host h1 is lost', evidence: ['no heartbeat for 5 min'], hint: 'Start its agent.', host: 'h1', service: null, job: null, task: null, actions: [] },
]

const json = (v: unknown): Response => new Response(JSON.stringify(v), { headers: { 'Content-Type': 'application/json' } })

let wrapper: VueWrapper | null = null
afterEach(unmountView)

describe('OverviewView', () => {
  it('links each thing that needs attention to the page where it is fixed', async () => {
    wrapper = await mountView(OverviewView, {
      role: 'viewer',
      fetch: (input) => {
        const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url
        const [path = '', query = ''] = url.split('?')
        if (path.endsWith('/clusters')) return Promise.resolve(json({ items: clusters, next: null }))
        if (path.endsWith('/hosts')) return Promise.resolve(json({ items: hosts, next: null }))
        if (path.endsWith('/units')) return Promise.resolve(json(units))
        if (path.endsWith('/advice')) return Promise.resolve(json([]))
        if (path.endsWith('/alerts') && query === 'firing=true') return Promise.resolve(json(alerts))
        if (path.endsWith('/jobs') && query.includes('state=FAILED')) return Promise.resolve(json({ items: failed, next: null }))
        return Promise.resolve(json({ items: [], next: null }))
      },
      routes: [
        { path: '/', name: 'overview' },
        { path: '/clusters/:cluster/hosts', name: 'hosts' },
        { path: '/clusters/:cluster/hosts/:host', name: 'host' },
        { path: '/clusters/:cluster/services', name: 'services' },
        { path: '/clusters/:cluster/configs', name: 'configs' },
        { path: '/clusters/:cluster/jobs', name: 'jobs' },
        { path: '/clusters/:cluster/alerts', name: 'alerts' },
        { path: '/clusters/:cluster/services/:service', name: 'service' },
        { path: '/jobs/:id', name: 'job' },
      ],
      at: '/',
    })
    const href = (key: string): string | undefined => wrapper?.get(`[data-testid="attention-${key}"] a`).attributes('href')
    expect(href('lost-h1')).toBe('/clusters/demo/hosts/h1')
    expect(href('failed-5')).toBe('/clusters/demo/services')
    expect(href('unhealthy-6')).toBe('/clusters/demo/services')
    expect(href('stale-7')).toBe('/clusters/demo/configs')
    expect(href('job-42')).toBe('/jobs/42')
  })

  it("shows each cluster's firing alerts with their counts, its advice, and links to the alert history", async () => {
    const urls: string[] = []
    wrapper = await mountView(OverviewView, {
      role: 'viewer',
      fetch: (input) => {
        const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url
        urls.push(url)
        const path = url.split('?')[0] ?? ''
        if (path.endsWith('/clusters')) return Promise.resolve(json({ items: clusters, next: null }))
        if (path.endsWith('/alerts')) return Promise.resolve(json(alerts))
        if (path.endsWith('/units')) return Promise.resolve(json([]))
        if (path.endsWith('/advice')) return Promise.resolve(json(advice))
        return Promise.resolve(json({ items: [], next: null }))
      },
      routes: [
        { path: '/', name: 'overview' },
        { path: '/clusters/:cluster/hosts', name: 'hosts' },
        { path: '/clusters/:cluster/hosts/:host', name: 'host' },
        { path: '/clusters/:cluster/jobs', name: 'jobs' },
        { path: '/clusters/:cluster/alerts', name: 'alerts' },
        { path: '/clusters/:cluster/services/:service', name: 'service' },
      ],
      at: '/',
    })
    const card = wrapper.get('[data-testid="overview-cluster-demo"]')
    expect(card.get('[data-testid="alert-count-CRITICAL"]').text()).toBe('2 critical')
    expect(card.get('[data-testid="alert-count-WARNING"]').text()).toBe('1 warning')
    expect(card.findAll('[data-testid^="alert-"][data-state]')).toHaveLength(3)
    expect(card.get('[data-testid="alert-3"] [data-testid="alert-silenced"]').attributes('title')).toBe('host h2 is in maintenance')
    expect(card.get('[data-testid="alerts-history-link"]').attributes('href')).toBe('/clusters/demo/alerts')
    // The whole cluster's advice.
    expect(card.get('[data-testid="finding-host.lost"] [data-testid="finding-title"]').text()).toBe('host h1 is lost')
    expect(urls).toContain('/api/v1/clusters/demo/advice')
    // The overview polls: it opens no event stream.
    expect(urls.filter((u) => u.includes('/events'))).toEqual([])
  })

  const routes = [
    { path: '/', name: 'overview' },
    { path: '/clusters/:cluster/hosts', name: 'hosts' },
  ]

  it('creates a cluster (admin) and opens its hosts page; the server names what is wrong', async () => {
    const posted: unknown[] = []
    let refuse = true
    wrapper = await mountView(OverviewView, {
      role: 'admin',
      fetch: (input, init) => {
        const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url
        if (init?.method === 'POST' && url.endsWith('/clusters')) {
          posted.push(JSON.parse(init.body as string))
          if (refuse) {
            refuse = false
            return Promise.resolve(
              new Response(JSON.stringify({ type: 'urn:bigmgr:problem:invalid', title: 'Invalid', status: 422, detail: "'a b' is not a valid cluster name" }), {
                status: 422,
                headers: { 'Content-Type': 'application/problem+json' },
              }),
            )
          }
          return Promise.resolve(json({ id: 2, name: 'prod', created_at: 0 }))
        }
        return Promise.resolve(json({ items: [], next: null }))
      },
      routes,
      at: '/',
    })
    const input = wrapper.get('[data-testid="create-cluster-name"] input')
    await input.setValue('a b')
    await wrapper.get('[data-testid="create-cluster"]').trigger('submit')
    await flushPromises()
    expect(wrapper.text()).toContain("'a b' is not a valid cluster name")
    await input.setValue('prod')
    await wrapper.get('[data-testid="create-cluster"]').trigger('submit')
    await flushPromises()
    expect(posted).toEqual([{ name: 'a b' }, { name: 'prod' }])
    expect(wrapper.vm.$router.currentRoute.value.fullPath).toBe('/clusters/prod/hosts')
  })

  it('offers no cluster creation to an operator', async () => {
    wrapper = await mountView(OverviewView, { role: 'operator', fetch: () => Promise.resolve(json({ items: [], next: null })), routes, at: '/' })
    expect(wrapper.find('[data-testid="create-cluster"]').exists()).toBe(false)
  })
})
