import { afterEach, describe, expect, it } from 'vitest'
import { flushPromises, type VueWrapper } from '@vue/test-utils'
import type { Role, ServiceView } from '../api/types'
import { mountView, unmountView } from '../testing/mountView'
import { fakeServer, paged } from '../testing/configServer'
import ServicesView from './ServicesView.vue'

const hello: ServiceView = {
  id: 1,
  name: 'hello',
  stack: 'demo',
  stack_version: '1.0.0',
  service: 'hello',
  created_at: 0,
  config_version: 1,
  configs: {},
  host_overrides: {},
  units: [],
}

let wrapper: VueWrapper | null = null
afterEach(unmountView)

async function mountAs(role: Role): Promise<VueWrapper> {
  wrapper = await mountView(ServicesView, {
    role,
    fetch: fakeServer({ 'GET /clusters/demo/services': () => paged([hello]) }).fetch,
    routes: [
      { path: '/clusters/:cluster/services', name: 'services' },
      { path: '/clusters/:cluster/services/new', name: 'add-service' },
      { path: '/clusters/:cluster/services/:service', name: 'service' },
      { path: '/clusters/:cluster/services/:service/configs', name: 'service-configs' },
      { path: '/clusters/:cluster/hosts/:host', name: 'host' },
      { path: '/jobs/:id', name: 'job' },
    ],
    at: '/clusters/demo/services',
  })
  return wrapper
}

describe('ServicesView', () => {
  it('offers "add service" to whoever may add services, and links each service to its page and its configs', async () => {
    const admin = await mountAs('admin')
    expect(admin.get('[data-testid="service-hello-link"]').attributes('href')).toBe('/clusters/demo/services/hello')
    expect(admin.get('[data-testid="add-service"]').attributes('href')).toBe('/clusters/demo/services/new')
    expect(admin.get('[data-testid="service-hello-configs"]').attributes('href')).toBe('/clusters/demo/services/hello/configs')
    admin.unmount()
    const operator = await mountAs('operator')
    expect(operator.find('[data-testid="add-service"]').exists()).toBe(false)
    expect(operator.find('[data-testid="service-hello-configs"]').exists()).toBe(true)
  })

  it('acts on the ticked units once one is ticked, and on the whole service again once none is', async () => {
    const two: ServiceView = {
      ...hello,
      units: [
        { id: 11, component: 'hello_server', host: 'h1', state: 'STARTED', stale: false },
        { id: 12, component: 'hello_server', host: 'h2', state: 'STARTED', stale: false },
      ],
    }
    const server = fakeServer({
      'GET /clusters/demo/services': () => paged([two]),
      'POST /clusters/demo/jobs': () => ({ id: 7, cluster: 'demo', command: 'restart', target: 'cluster', options: {}, state: 'QUEUED', created_at: 0 }),
    })
    wrapper = await mountView(ServicesView, {
      role: 'operator',
      fetch: server.fetch,
      routes: [
        { path: '/clusters/:cluster/services', name: 'services' },
        { path: '/clusters/:cluster/services/:service', name: 'service' },
      { path: '/clusters/:cluster/services/:service/configs', name: 'service-configs' },
        { path: '/clusters/:cluster/hosts/:host', name: 'host' },
        { path: '/jobs/:id', name: 'job' },
      ],
      at: '/clusters/demo/services',
    })
    const jobs = (): unknown[] => server.calls.filter((c) => c.method === 'POST').map((c) => (c.body as { target: unknown }).target)
    await wrapper.get('[data-testid="unit-pick-12"]').trigger('click')
    await wrapper.get('[data-testid="service-hello-restart"]').trigger('click')
    await flushPromises()
    expect(jobs()).toEqual([{ units: [12] }])
    await wrapper.vm.$router.push('/clusters/demo/services')
    await flushPromises()
    await wrapper.get('[data-testid="unit-pick-12"]').trigger('click')
    await wrapper.get('[data-testid="service-hello-stop"]').trigger('click')
    await flushPromises()
    expect(jobs()).toEqual([{ units: [12] }, { service: 'hello' }])
  })

  it('gives a viewer no commands and no unit picks', async () => {
    const two: ServiceView = { ...hello, units: [{ id: 11, component: 'hello_server', host: 'h1', state: 'STARTED', stale: false }] }
    wrapper = await mountView(ServicesView, {
      role: 'viewer',
      fetch: fakeServer({ 'GET /clusters/demo/services': () => paged([two]) }).fetch,
      routes: [
        { path: '/clusters/:cluster/services', name: 'services' },
        { path: '/clusters/:cluster/services/:service', name: 'service' },
      { path: '/clusters/:cluster/services/:service/configs', name: 'service-configs' },
        { path: '/clusters/:cluster/hosts/:host', name: 'host' },
      ],
      at: '/clusters/demo/services',
    })
    expect(wrapper.find('[data-testid="unit-pick-11"]').exists()).toBe(false)
    expect(wrapper.find('[data-testid="service-hello-restart"]').exists()).toBe(false)
    expect(wrapper.find('[data-testid="service-hello-scope"]').exists()).toBe(false)
  })
})
