import { afterEach, describe, expect, it } from 'vitest'
import { flushPromises, type VueWrapper } from '@vue/test-utils'
import type { Role, ServiceView, SnapshotView, UnitStatusView } from '../api/types'
import { mountView, unmountView } from '../testing/mountView'
import { fakeServer, json, paged, problem, type Routes } from '../testing/configServer'
import ConfigsView from './ConfigsView.vue'

const svc = (id: number, name: string, version: number): ServiceView => ({
  id,
  name,
  stack: 'demo',
  stack_version: '1.0.0',
  service: name,
  created_at: 0,
  config_version: version,
  configs: {},
  host_overrides: {},
  units: [],
})
const unit = (id: number, service: string, stale: boolean): UnitStatusView => ({
  id,
  service,
  component: `${service}_server`,
  host: `h${id}`,
  state: 'STARTED',
  desired_version: 2,
  applied_version: stale ? 1 : 2,
  stale,
  stale_reason: stale ? 'config changed' : null,
})
const snapshots: SnapshotView[] = [{ name: 'before-upgrade', author: 'alice', created_at: 1700000000000, message: 'known good', versions: { hello: 2, greeter: 1 } }]

function server(opts: { stale: boolean; extra?: Routes }): ReturnType<typeof fakeServer> {
  return fakeServer({
    'GET /clusters/demo/services': () => paged([svc(1, 'hello', 2), svc(2, 'greeter', 1)]),
    'GET /clusters/demo/units': () => [unit(1, 'hello', opts.stale), unit(2, 'hello', opts.stale), unit(3, 'greeter', false)],
    'GET /clusters/demo/snapshots': () => snapshots,
    'POST /clusters/demo/snapshots': (c) => json({ ...(c.body as object), author: 'u', created_at: 1, versions: {} }, 201),
    'POST /clusters/demo/snapshots/before-upgrade/restore': () => [{ service: 'hello', version: 3 }],
    'POST /clusters/demo/restart-stale': () => json([], 202),
    ...opts.extra,
  })
}

let wrapper: VueWrapper | null = null
afterEach(unmountView)

async function mountAs(role: Role, fetch: typeof globalThis.fetch): Promise<VueWrapper> {
  wrapper = await mountView(ConfigsView, {
    role,
    fetch,
    routes: [
      { path: '/clusters/:cluster/configs', name: 'configs' },
      { path: '/clusters/:cluster/services/:service/configs', name: 'service-configs' },
      { path: '/jobs/:id', name: 'job' },
    ],
    at: '/clusters/demo/configs',
  })
  await flushPromises()
  return wrapper
}

describe('ConfigsView', () => {
  it("lists each service's config version and stale units, linking to its configs page", async () => {
    const w = await mountAs('viewer', server({ stale: true }).fetch)
    expect(w.get('[data-testid="configs-version-hello"]').text()).toBe('2')
    expect(w.get('[data-testid="configs-stale-hello"]').text()).toBe('2')
    expect(w.get('[data-testid="configs-stale-greeter"]').text()).toBe('0')
    expect(w.get('[data-testid="configs-service-greeter"]').attributes('href')).toBe('/clusters/demo/services/greeter/configs')
    expect(w.get('[data-testid="snapshot-before-upgrade"]').text()).toContain('greeter v1, hello v2')
  })

  it('shows the stale banner only with stale units; apply restarts the whole cluster one at a time', async () => {
    const fresh = await mountAs('operator', server({ stale: false }).fetch)
    expect(fresh.find('[data-testid="stale-banner"]').exists()).toBe(false)
    fresh.unmount()
    wrapper = null

    const s = server({ stale: true })
    const w = await mountAs('operator', s.fetch)
    expect(w.get('[data-testid="stale-banner"]').text()).toContain('2 units run an older configuration')
    await w.get('[data-testid="apply-rolling"]').trigger('click')
    await flushPromises()
    expect(s.find('POST', '/clusters/demo/restart-stale').map((c) => c.body)).toEqual([{ options: { batch_size: 1 } }])
    // The server started no job: said so, and the page stays.
    expect(w.find('[data-testid="apply-nothing"]').exists()).toBe(true)
    expect(w.vm.$route.name).toBe('configs')
  })

  it('creates a snapshot (its field error on the name) and restores one after a confirm', async () => {
    let refuse = true
    const s = server({
      stale: false,
      extra: {
        'POST /clusters/demo/snapshots': (c) => {
          if (refuse) return problem(409, 'snapshot before-upgrade exists', 'name')
          return json({ ...(c.body as object), author: 'u', created_at: 1, versions: {} }, 201)
        },
      },
    })
    const w = await mountAs('operator', s.fetch)
    await w.get('[data-testid="snapshot-name"] input').setValue('before-upgrade')
    await w.get('[data-testid="snapshot-message"] input').setValue('again')
    await w.get('[data-testid="snapshot-create"]').trigger('click')
    await flushPromises()
    expect(w.get('[data-testid="field-error-name"]').text()).toBe('snapshot before-upgrade exists')
    refuse = false
    await w.get('[data-testid="snapshot-name"] input').setValue('after')
    await w.get('[data-testid="snapshot-create"]').trigger('click')
    await flushPromises()
    expect(s.find('POST', '/clusters/demo/snapshots').map((c) => c.body)).toEqual([
      { name: 'before-upgrade', message: 'again' },
      { name: 'after', message: 'again' },
    ])
    expect(w.find('[data-testid="field-error-name"]').exists()).toBe(false)

    await w.get('[data-testid="snapshot-restore-before-upgrade"]').trigger('click')
    await flushPromises()
    const confirm = [...document.querySelectorAll<HTMLElement>('.n-popconfirm__action button')].find((b) => b.textContent.trim() === 'Restore')
    confirm?.click()
    await flushPromises()
    expect(s.find('POST', '/clusters/demo/snapshots/before-upgrade/restore')).toHaveLength(1)
    expect(w.get('[data-testid="snapshot-restored"]').text()).toContain('before-upgrade')
  })

  it('gives a viewer no snapshot, restore or apply controls', async () => {
    const w = await mountAs('viewer', server({ stale: true }).fetch)
    expect(w.find('[data-testid="stale-banner"]').exists()).toBe(true)
    for (const id of ['apply-rolling', 'snapshot-create', 'snapshot-name', 'snapshot-restore-before-upgrade']) {
      expect(w.find(`[data-testid="${id}"]`).exists(), id).toBe(false)
    }
  })
})
