import { afterEach, describe, expect, it } from 'vitest'
import { flushPromises, type VueWrapper } from '@vue/test-utils'
import { defineComponent, h } from 'vue'
import type { MaintenanceView, Role } from '../api/types'
import { fakeServer, problem } from '../testing/configServer'
import { mountView, unmountView } from '../testing/mountView'
import MaintenanceControl from './MaintenanceControl.vue'

const HOUR = 3_600_000
const window = (id: number, more: Partial<MaintenanceView>): MaintenanceView => ({
  id,
  host: null,
  service: null,
  until: Date.now() + 2 * HOUR,
  reason: 'disk swap',
  by: 'admin',
  created_at: Date.now(),
  ...more,
})

let subject: { host?: string; service?: string } = {}
const Page = defineComponent({ render: () => h(MaintenanceControl, { cluster: 'demo', ...subject }) })

afterEach(unmountView)

/** A fake server keeping the cluster's windows: POST adds one, DELETE ends it. */
function server(windows: MaintenanceView[], refuse?: Response): ReturnType<typeof fakeServer> {
  let next = 100
  return fakeServer({
    'GET /clusters/demo/maintenance': () => windows,
    'POST /clusters/demo/maintenance': (c) => {
      if (refuse) return refuse
      const b = c.body as { host?: string; service?: string; reason?: string }
      const w = window(next++, { host: b.host ?? null, service: b.service ?? null, reason: b.reason ?? '', by: 'u' })
      windows.push(w)
      return new Response(JSON.stringify(w), { status: 201, headers: { 'Content-Type': 'application/json' } })
    },
    'DELETE /clusters/demo/maintenance/100': () => {
      windows.splice(windows.findIndex((w) => w.id === 100), 1)
      return new Response(null, { status: 204 })
    },
  })
}

function mountAs(role: Role, fetch: typeof globalThis.fetch, of: { host?: string; service?: string }): Promise<VueWrapper> {
  subject = of
  return mountView(Page, { role, fetch, routes: [{ path: '/m', name: 'm' }], at: '/m' })
}

describe('MaintenanceControl', () => {
  it('starts a window on the host for the chosen time with a reason, shows it, and ends it now', async () => {
    const s = server([window(7, { host: 'h2' }), window(8, { service: 'h1' })])
    const w = await mountAs('operator', s.fetch, { host: 'h1' })
    // Another host's window, or a service's of the same name, is not this host's.
    expect(w.find('[data-testid="maintenance-active"]').exists()).toBe(false)
    await w.get('[data-testid="maintenance-duration"] .n-base-selection').trigger('click')
    await flushPromises()
    ;[...document.querySelectorAll<HTMLElement>('.n-base-select-option')].find((o) => o.textContent.trim() === '30m')?.click()
    await w.get('[data-testid="maintenance-reason"] input').setValue('  disk swap ')
    await w.get('[data-testid="maintenance-form"]').trigger('submit')
    await flushPromises()
    expect(s.find('POST', '/clusters/demo/maintenance').map((c) => c.body)).toEqual([{ host: 'h1', for: '30m', reason: 'disk swap' }])
    expect(w.get('[data-testid="maintenance-active"]').text()).toMatch(/^In maintenance until .+, by u: disk swap$/)
    expect(w.find('[data-testid="maintenance-form"]').exists()).toBe(false)
    await w.get('[data-testid="maintenance-end-100"]').trigger('click')
    await flushPromises()
    expect(s.find('DELETE', '/clusters/demo/maintenance/100')).toHaveLength(1)
    expect(w.find('[data-testid="maintenance-active"]').exists()).toBe(false)
    expect(w.find('[data-testid="maintenance-form"]').exists()).toBe(true)
  })

  it("starts a service's window for the default two hours, without a reason when none is given", async () => {
    const s = server([])
    const w = await mountAs('operator', s.fetch, { service: 'hello' })
    await w.get('[data-testid="maintenance-form"]').trigger('submit')
    await flushPromises()
    expect(s.find('POST', '/clusters/demo/maintenance').map((c) => c.body)).toEqual([{ service: 'hello', for: '2h' }])
    expect(w.get('[data-testid="maintenance-active"]').text()).toMatch(/^In maintenance until .+, by u$/)
  })

  it('takes a duration typed in', async () => {
    const s = server([])
    const w = await mountAs('operator', s.fetch, { host: 'h1' })
    await w.get('[data-testid="maintenance-duration"] .n-base-selection').trigger('click')
    const input = w.get('[data-testid="maintenance-duration"] input')
    await input.setValue('90m')
    await input.trigger('keydown', { key: 'Enter', code: 'Enter' })
    await flushPromises()
    await w.get('[data-testid="maintenance-form"]').trigger('submit')
    await flushPromises()
    expect(s.find('POST', '/clusters/demo/maintenance').map((c) => c.body)).toEqual([{ host: 'h1', for: '90m' }])
  })

  it("shows the server's word on a bad duration under the field", async () => {
    const s = server([], problem(422, "'2 weeks' is not a duration (e.g. 30m, 2h)", 'for'))
    const w = await mountAs('operator', s.fetch, { host: 'h1' })
    await w.get('[data-testid="maintenance-form"]').trigger('submit')
    await flushPromises()
    expect(w.get('[data-testid="field-error-for"]').text()).toBe("'2 weeks' is not a duration (e.g. 30m, 2h)")
    expect(w.find('[data-testid="problem"]').exists()).toBe(false)
  })

  it('shows a viewer the window but neither "End now" nor the form; ignores windows that have ended', async () => {
    const s = server([window(3, { host: 'h1', until: Date.now() - 1000 }), window(4, { host: 'h1', reason: '' })])
    const w = await mountAs('viewer', s.fetch, { host: 'h1' })
    expect(w.findAll('[data-testid="maintenance-active"]').map((a) => a.text())).toEqual([expect.stringMatching(/^In maintenance until .+, by admin$/)])
    expect(w.find('[data-testid^="maintenance-end-"]').exists()).toBe(false)
    expect(w.find('[data-testid="maintenance-form"]').exists()).toBe(false)
    unmountView()
    const none = await mountAs('viewer', server([]).fetch, { host: 'h1' })
    expect(none.get('[data-testid="maintenance-none"]').text()).toBe('Not in maintenance.')
    expect(none.find('[data-testid="maintenance-form"]').exists()).toBe(false)
  })
})
