import { afterEach, describe, expect, it } from 'vitest'
import { flushPromises, type VueWrapper } from '@vue/test-utils'
import type { AlertView, HealingView, Role, ServiceView as Service } from '../api/types'
import { fakeServer } from '../testing/configServer'
import { eventStream } from '../testing/events'
import { mountView, unmountView } from '../testing/mountView'
import ServiceView from './ServiceView.vue'

const hello: Service = {
  id: 1,
  name: 'hello',
  stack: 'demo',
  stack_version: '1.0.0',
  service: 'hello',
  created_at: 0,
  config_version: 2,
  configs: {},
  host_overrides: {},
  units: [{ id: 11, component: 'hello_server', host: 'h1', state: 'FAILED', stale: false }],
}
const alerts: AlertView[] = [
  { id: 1, definition: 'unit_down', state: 'CRITICAL', text: 'hello_server on h1 is FAILED', host: 'h1', service: 'hello', unit: 'hello_server@h1', since: 0, checked_at: 0, silenced: null },
  { id: 2, definition: 'host_lost', state: 'CRITICAL', text: 'h2 is lost', host: 'h2', service: null, unit: null, since: 0, checked_at: 0, silenced: null },
]
const healing: HealingView = { restart: true, grace: '30s', max_per_hour: 5, attempts_last_hour: 0, gave_up: false }

afterEach(unmountView)

function mountAs(role: Role): Promise<{ w: VueWrapper; server: ReturnType<typeof fakeServer>; events: ReturnType<typeof eventStream> }> {
  const events = eventStream()
  const server = fakeServer({
    'GET /clusters/demo/services/hello': () => hello,
    'GET /clusters/demo/alerts': () => alerts,
    'GET /clusters/demo/maintenance': () => [],
    'GET /clusters/demo/services/hello/healing': () => healing,
    'GET /clusters/demo/events': (c) => events.respond(c.signal),
  })
  return mountView(ServiceView, {
    role,
    fetch: server.fetch,
    routes: [
      { path: '/clusters/:cluster/services/:service', name: 'service' },
      { path: '/clusters/:cluster/services/:service/configs', name: 'service-configs' },
      { path: '/clusters/:cluster/hosts/:host', name: 'host' },
    ],
    at: '/clusters/demo/services/hello',
  }).then((w) => ({ w, server, events }))
}

describe('ServiceView', () => {
  it("shows the service's units, its own alerts, its maintenance and its self-healing, over one event stream", async () => {
    const { w, server, events } = await mountAs('operator')
    expect(w.get('[data-testid="service-configs-link"]').attributes('href')).toBe('/clusters/demo/services/hello/configs')
    expect(w.get('[data-testid="unit-11"] [data-state]').attributes('data-state')).toBe('FAILED')
    expect(w.findAll('[data-testid^="alert-"][data-state]').map((r) => r.attributes('data-testid'))).toEqual(['alert-1'])
    expect(w.find('[data-testid="maintenance-form"]').exists()).toBe(true)
    expect(w.find('[data-testid="healing-save"]').exists()).toBe(true)
    expect(server.find('GET', '/clusters/demo/events')).toHaveLength(1)
    events.changed('alerts')
    await flushPromises()
    expect(server.find('GET', '/clusters/demo/alerts')).toHaveLength(2)
    expect(server.find('GET', '/clusters/demo/services/hello')).toHaveLength(1)
  })

  it('gives a viewer no control that changes anything', async () => {
    const { w } = await mountAs('viewer')
    expect(w.find('[data-testid="alerts"]').exists()).toBe(true)
    expect(w.find('[data-testid="maintenance-form"]').exists()).toBe(false)
    expect(w.find('[data-testid="healing-save"]').exists()).toBe(false)
    // (The disabled number field's - and + are buttons.)
    expect(w.findAll('button').filter((b) => !b.classes().includes('n-button--disabled'))).toHaveLength(0)
  })
})
