import { afterEach, describe, expect, it } from 'vitest'
import type { VueWrapper } from '@vue/test-utils'
import type { Role, ServiceView } from '../api/types'
import { mountView } from '../testing/mountView'
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
afterEach(() => {
  wrapper?.unmount()
  wrapper = null
})

async function mountAs(role: Role): Promise<VueWrapper> {
  wrapper = await mountView(ServicesView, {
    role,
    fetch: fakeServer({ 'GET /clusters/demo/services': () => paged([hello]) }).fetch,
    routes: [
      { path: '/clusters/:cluster/services', name: 'services' },
      { path: '/clusters/:cluster/services/new', name: 'add-service' },
      { path: '/clusters/:cluster/services/:service/configs', name: 'service-configs' },
      { path: '/clusters/:cluster/hosts/:host', name: 'host' },
      { path: '/jobs/:id', name: 'job' },
    ],
    at: '/clusters/demo/services',
  })
  return wrapper
}

describe('ServicesView', () => {
  it('offers "add service" to whoever may add services, and links each service to its configs', async () => {
    const admin = await mountAs('admin')
    expect(admin.get('[data-testid="add-service"]').attributes('href')).toBe('/clusters/demo/services/new')
    expect(admin.get('[data-testid="service-hello-configs"]').attributes('href')).toBe('/clusters/demo/services/hello/configs')
    admin.unmount()
    const operator = await mountAs('operator')
    expect(operator.find('[data-testid="add-service"]').exists()).toBe(false)
    expect(operator.find('[data-testid="service-hello-configs"]').exists()).toBe(true)
  })
})
