import { afterEach, describe, expect, it } from 'vitest'
import { flushPromises, type VueWrapper } from '@vue/test-utils'
import { defineComponent, h } from 'vue'
import type { HealingChange, HealingView, Role } from '../api/types'
import { fakeServer, problem } from '../testing/configServer'
import { eventStream } from '../testing/events'
import { mountView, unmountView } from '../testing/mountView'
import HealingForm from './HealingForm.vue'

const PATH = '/clusters/demo/services/hello/healing'
const Page = defineComponent({ render: () => h(HealingForm, { cluster: 'demo', service: 'hello' }) })

afterEach(unmountView)

/** A fake server keeping the policy; `refuse` answers the next PUT instead. */
function server(policy: HealingView, refuse: Response[] = []): ReturnType<typeof fakeServer> & { events: ReturnType<typeof eventStream> } {
  const events = eventStream()
  const s = fakeServer({
    [`GET ${PATH}`]: () => policy,
    [`PUT ${PATH}`]: (c) => {
      const no = refuse.shift()
      if (no) return no
      const b = c.body as HealingChange
      Object.assign(policy, { restart: b.restart, grace: b.grace ?? policy.grace, max_per_hour: b.max_per_hour ?? policy.max_per_hour })
      return policy
    },
    'GET /clusters/demo/events': (c) => events.respond(c.signal),
  })
  return { ...s, events }
}

const mountAs = (role: Role, fetch: typeof globalThis.fetch): Promise<VueWrapper> =>
  mountView(Page, { role, fetch, routes: [{ path: '/h', name: 'h' }], at: '/h' })

const policy = (more: Partial<HealingView> = {}): HealingView => ({ restart: true, grace: '30s', max_per_hour: 5, attempts_last_hour: 1, gave_up: false, ...more })

describe('HealingForm', () => {
  it('saves the edited policy with PUT and shows what the server kept', async () => {
    const s = server(policy())
    const w = await mountAs('operator', s.fetch)
    expect(w.get('[data-testid="healing-attempts"]').text()).toBe('Restarts in the last hour: 1')
    expect(w.get('[data-testid="healing-save"]').attributes('disabled')).toBeDefined()
    await w.get('[data-testid="healing-restart"]').trigger('click')
    await w.get('[data-testid="healing-grace"] input').setValue('45s')
    await w.get('[data-testid="healing-max"] input').setValue('3')
    await w.get('[data-testid="healing-max"] input').trigger('blur')
    await w.get('[data-testid="healing-form"]').trigger('submit')
    await flushPromises()
    expect(s.find('PUT', PATH).map((c) => c.body)).toEqual([{ restart: false, grace: '45s', max_per_hour: 3 }])
    expect((w.get('[data-testid="healing-grace"] input').element as HTMLInputElement).value).toBe('45s')
    expect(w.get('[data-testid="healing-save"]').attributes('disabled')).toBeDefined()
  })

  it("shows the server's 422 on the field it names, and any other refusal above the form", async () => {
    const s = server(policy(), [
      problem(422, "'soon' is not a duration (e.g. 30s, 2m)", 'grace'),
      problem(409, 'the service is being removed'),
    ])
    const w = await mountAs('operator', s.fetch)
    await w.get('[data-testid="healing-grace"] input').setValue('soon')
    await w.get('[data-testid="healing-form"]').trigger('submit')
    await flushPromises()
    expect(w.get('[data-testid="field-error-grace"]').text()).toBe("'soon' is not a duration (e.g. 30s, 2m)")
    expect(w.find('[data-testid="problem"]').exists()).toBe(false)
    // The form keeps what was typed.
    expect((w.get('[data-testid="healing-grace"] input').element as HTMLInputElement).value).toBe('soon')
    await w.get('[data-testid="healing-form"]').trigger('submit')
    await flushPromises()
    expect(w.find('[data-testid="field-error-grace"]').exists()).toBe(false)
    expect(w.get('[data-testid="problem-detail"]').text()).toBe('the service is being removed')
  })

  it('warns once self-healing gave up', async () => {
    const w = await mountAs('viewer', server(policy({ attempts_last_hour: 5, gave_up: true })).fetch)
    expect(w.get('[data-testid="healing-gave-up"]').text()).toContain('5 restarts in the last hour reached the limit of 5')
  })

  it('shows a viewer the policy without a way to change it', async () => {
    const w = await mountAs('viewer', server(policy()).fetch)
    expect(w.find('[data-testid="healing-save"]').exists()).toBe(false)
    expect(w.find('[data-testid="healing-gave-up"]').exists()).toBe(false)
    expect(w.get('[data-testid="healing-grace"] input').attributes('disabled')).toBeDefined()
    expect(w.get('[data-testid="healing-restart"]').classes()).toContain('n-switch--disabled')
  })

  it('re-reads the restarts when units change, keeping what is being edited', async () => {
    const p = policy()
    const s = server(p)
    const w = await mountAs('operator', s.fetch)
    await w.get('[data-testid="healing-grace"] input').setValue('1m')
    p.attempts_last_hour = 2
    s.events.changed('units')
    await flushPromises()
    expect(s.find('GET', PATH)).toHaveLength(2)
    expect(w.get('[data-testid="healing-attempts"]').text()).toBe('Restarts in the last hour: 2')
    expect((w.get('[data-testid="healing-grace"] input').element as HTMLInputElement).value).toBe('1m')
  })
})
