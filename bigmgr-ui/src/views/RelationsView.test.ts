import { afterEach, describe, expect, it } from 'vitest'
import { flushPromises, type VueWrapper } from '@vue/test-utils'
import { NSelect, NSwitch } from 'naive-ui'
import type { Router } from 'vue-router'
import type { RelationEventView, RelationView, Role, ServiceView } from '../api/types'
import { mountView, unmountView } from '../testing/mountView'
import RelationsView from './RelationsView.vue'

function service(id: number, name: string, type: string): ServiceView {
  return {
    id,
    name,
    stack: 'demo',
    stack_version: '1.0',
    service: type,
    created_at: 0,
    config_version: 1,
    configs: {},
    host_overrides: {},
    units: [],
  }
}

const services = [service(1, 'web', 'nginx'), service(2, 'db', 'postgres'), service(3, 'prom', 'prometheus')]
const relations: RelationView[] = [
  { id: 7, requirer: 'web', requirer_endpoint: 'database', provider: 'db', provider_endpoint: 'db', interface: 'pgsql', auto_reconfigure: true, created_at: 0 },
  { id: 8, requirer: 'prom', requirer_endpoint: 'targets', provider: 'web', provider_endpoint: 'metrics', interface: 'prometheus', auto_reconfigure: false, created_at: 0 },
]
const events: RelationEventView[] = [
  { at: 1000, kind: 'joined', service: 'web', detail: 'web/0 joined', job: 12 },
  { at: 2000, kind: 'changed', service: 'db', detail: 'db settings changed', job: null },
]

interface Call {
  method: string
  url: string
  body: unknown
}

const json = (v: unknown, status = 200): Response =>
  new Response(JSON.stringify(v), { status, headers: { 'Content-Type': status < 300 ? 'application/json' : 'application/problem+json' } })

afterEach(unmountView)

async function mountAs(role: Role, at = '/clusters/demo/relations', relate?: Response): Promise<{ w: VueWrapper; calls: Call[]; router: Router }> {
  const calls: Call[] = []
  const w = await mountView(RelationsView, {
    role,
    fetch: (input, init) => {
      const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url
      const method = init?.method ?? 'GET'
      calls.push({ method, url, body: typeof init?.body === 'string' ? JSON.parse(init.body) : undefined })
      const path = url.split('?')[0] ?? ''
      if (path.endsWith('/events') && !path.includes('/relations/')) return Promise.resolve(json({ type: 'about:blank', title: 'Not Found', status: 404, detail: '' }, 404))
      if (path.endsWith('/services')) return Promise.resolve(json({ items: services, next: null }))
      if (path.endsWith('/relations') && method === 'POST') return Promise.resolve(relate ?? json(relations[0], 201))
      if (path.endsWith('/relations')) return Promise.resolve(json(relations))
      if (/\/relations\/\d+\/events$/.test(path)) return Promise.resolve(json(events))
      if (/\/relations\/\d+$/.test(path) && method === 'DELETE') return Promise.resolve(new Response(null, { status: 204 }))
      return Promise.resolve(json({ type: 'about:blank', title: 'Not Found', status: 404, detail: url }, 404))
    },
    routes: [
      { path: '/clusters/:cluster/relations', name: 'relations' },
      { path: '/jobs/:id', name: 'job' },
    ],
    at,
  })
  return { w, calls, router: (w.vm as unknown as { $router: Router }).$router }
}

describe('RelationsView', () => {
  it('draws one node per service and one edge per relation, and lists them in a table', async () => {
    const { w } = await mountAs('viewer')
    const graph = w.get('[data-testid="relations-graph"]')
    expect(graph.findAll('[data-testid^="relation-node-"]').map((n) => n.attributes('data-testid')).sort()).toEqual([
      'relation-node-db',
      'relation-node-prom',
      'relation-node-web',
    ])
    expect(graph.findAll('[data-testid^="relation-edge-"]').map((e) => e.attributes('data-testid'))).toEqual(['relation-edge-7', 'relation-edge-8'])
    // Providers sit left of their requirers: db ← web ← prom.
    const x = (name: string): number => Number(/translate\(([\d.]+),/.exec(w.get(`[data-testid="relation-node-${name}"]`).attributes('transform') ?? '')?.[1])
    expect(x('db')).toBeLessThan(x('web'))
    expect(x('web')).toBeLessThan(x('prom'))
    expect(w.get('[data-testid="relation-edge-7"]').text()).toBe('pgsql')
    expect(w.get('[data-testid="relation-edge-7"]').attributes('tabindex')).toBe('0')
    expect(w.get('[data-testid="relation-node-web"]').attributes('tabindex')).toBe('0')
    expect(w.get('[data-testid="relation-7"]').text()).toContain('web:database')
    expect(w.get('[data-testid="relation-7"]').text()).toContain('db:db')
  })

  it('selects a relation from its edge: ?relation= in the URL and its events as a timeline with job links', async () => {
    const { w, calls, router } = await mountAs('viewer')
    expect(w.find('[data-testid="relation-events"]').exists()).toBe(false)
    await w.get('[data-testid="relation-edge-7"]').trigger('click')
    await flushPromises()
    expect(router.currentRoute.value.query.relation).toBe('7')
    expect(calls.some((c) => c.url.endsWith('/api/v1/clusters/demo/relations/7/events'))).toBe(true)
    const timeline = w.get('[data-testid="relation-events"]')
    expect(timeline.findAll('[data-testid^="relation-event-"][data-kind]').map((e) => e.attributes('data-kind'))).toEqual(['joined', 'changed'])
    expect(w.get('[data-testid="relation-event-job-0"]').attributes('href')).toBe('/jobs/12')
    expect(w.find('[data-testid="relation-event-job-1"]').exists()).toBe(false)
    expect(w.get('[data-testid="relation-edge-7"]').attributes('aria-pressed')).toBe('true')
    // The keyboard selects too.
    await w.get('[data-testid="relation-edge-8"]').trigger('keydown', { key: 'Enter' })
    await flushPromises()
    expect(router.currentRoute.value.query.relation).toBe('8')
  })

  it('opens a deep link with its relation selected', async () => {
    const { w, calls } = await mountAs('viewer', '/clusters/demo/relations?relation=8')
    expect(calls.some((c) => c.url.endsWith('/relations/8/events'))).toBe(true)
    expect(w.get('[data-testid="relation-events"]').text()).toContain('web/0 joined')
  })

  it('relates with {requirer, provider, auto_reconfigure} and shows the server\'s error', async () => {
    const refused = json(
      { type: 'urn:bigmgr:problem:invalid', title: 'Unprocessable Entity', status: 422, detail: "no endpoint of 'db' shares an interface with 'prom'", field: 'provider' },
      422,
    )
    const { w, calls } = await mountAs('operator', '/clusters/demo/relations', refused)
    // What picking (or typing) in the selects and flipping the switch emit.
    const select = (id: string) => w.findAllComponents(NSelect).find((c) => c.attributes('data-testid') === id)
    select('relate-requirer')?.vm.$emit('update:value', 'prom')
    select('relate-provider')?.vm.$emit('update:value', 'db:db')
    w.findComponent(NSwitch).vm.$emit('update:value', false)
    await flushPromises()
    await w.get('[data-testid="relate-form"] form').trigger('submit')
    await flushPromises()
    const post = calls.find((c) => c.method === 'POST')
    expect(post?.url).toBe('/api/v1/clusters/demo/relations')
    expect(post?.body).toEqual({ requirer: 'prom', provider: 'db:db', auto_reconfigure: false })
    expect(w.get('[data-testid="relate-form"] [data-testid="problem-detail"]').text()).toBe("no endpoint of 'db' shares an interface with 'prom'")
    expect(w.get('[data-testid="relate-form"] [data-testid="problem-field"]').text()).toBe('provider')
  })

  it('unrelates after a confirmation', async () => {
    const { w, calls } = await mountAs('operator')
    await w.get('[data-testid="unrelate-8"]').trigger('click')
    await flushPromises()
    expect(calls.some((c) => c.method === 'DELETE')).toBe(false)
    const confirm = [...document.querySelectorAll<HTMLButtonElement>('.n-popconfirm__action button')].at(-1)
    if (!confirm) throw new Error('no confirmation')
    confirm.click()
    await flushPromises()
    expect(calls.filter((c) => c.method === 'DELETE').map((c) => c.url)).toEqual(['/api/v1/clusters/demo/relations/8'])
  })

  it('shows a viewer no relate or unrelate controls', async () => {
    const { w } = await mountAs('viewer')
    expect(w.find('[data-testid="relations-table"]').exists()).toBe(true)
    expect(w.find('[data-testid="relate-form"]').exists()).toBe(false)
    expect(w.find('[data-testid="relate-submit"]').exists()).toBe(false)
    expect(w.find('[data-testid^="unrelate-"]').exists()).toBe(false)
  })
})
