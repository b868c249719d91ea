import { afterEach, describe, expect, it } from 'vitest'
import { flushPromises, type VueWrapper } from '@vue/test-utils'
import type { HostView, Role, ServiceCheckView } from '../api/types'
import { mountView, unmountView } from '../testing/mountView'
import { demoStack, fakeServer, json, paged, problem, type Call } from '../testing/configServer'
import AddServiceView from './AddServiceView.vue'

const stacks = demoStack(
  [
    { name: 'greeting', type: 'string', default: 'hello', description: 'What the daemon writes.', required: true, secret: false },
    { name: 'interval', type: 'int', default: 5, description: 'Seconds between heartbeats.', required: true, secret: false },
    { name: 'token', type: 'string', description: 'A secret.', required: false, secret: true },
  ],
  'A tiny demo daemon.',
)
const hosts: HostView[] = ['h1', 'h2'].map((name, i) => ({ id: i + 1, name, cluster: 'demo', address: `10.0.0.${i + 1}`, state: 'ONLINE', units: [] }))
const planned: ServiceCheckView = { name: 'hello', stack: 'demo', stack_version: '1.0.0', service: 'hello', units: [{ component: 'hello_server', host: 'h1' }] }

/** The server; `check` answers the dry runs in turn (then the plan). */
function server(check: (() => Response)[]): { calls: Call[]; fetch: typeof fetch } {
  return fakeServer({
    'GET /stacks': () => paged(stacks),
    'GET /clusters/demo/hosts': () => paged(hosts),
    'POST /clusters/demo/services': (c) =>
      c.query.get('dry_run') === 'true' ? (check.shift() ?? (() => json(planned)))() : json({ id: 1, name: 'hello' }, 201),
    'POST /clusters/demo/jobs': () => json({ id: 7, state: 'QUEUED' }, 202),
  })
}

let wrapper: VueWrapper | null = null
afterEach(unmountView)

async function mountAs(role: Role, fetch: typeof globalThis.fetch): Promise<VueWrapper> {
  wrapper = await mountView(AddServiceView, {
    role,
    fetch,
    routes: [
      { path: '/clusters/:cluster/services/new', name: 'add-service' },
      { path: '/clusters/:cluster/services', name: 'services' },
      { path: '/jobs/:id', name: 'job' },
    ],
    at: '/clusters/demo/services/new',
  })
  return wrapper
}

/** Opens the select inside `testid` and clicks its option `label`. */
async function pick(w: VueWrapper, testid: string, label: string): Promise<void> {
  await w.get(`[data-testid="${testid}"] .n-base-selection`).trigger('click')
  await flushPromises()
  const option = [...document.querySelectorAll<HTMLElement>('.n-base-select-option')].find((o) => o.textContent.trim() === label)
  if (!option) throw new Error(`no option ${label} in ${testid}`)
  option.click()
  await flushPromises()
}

async function next(w: VueWrapper): Promise<void> {
  await w.get('[data-testid="wizard-next"]').trigger('click')
  await flushPromises()
}

const step = (w: VueWrapper): string | undefined => w.get('[data-testid="wizard-steps"]').attributes('data-step')
const dryRuns = (calls: Call[]): Call[] => calls.filter((c) => c.method === 'POST' && c.query.get('dry_run') === 'true')

/** Stack and service chosen, on the placement step. */
async function toPlacement(w: VueWrapper): Promise<void> {
  await pick(w, 'wizard-stack', 'demo 1.0.0')
  await next(w)
  expect(step(w)).toBe('service')
  await pick(w, 'wizard-service', 'hello 1.0.0')
  expect((w.get('[data-testid="wizard-name"] input').element as HTMLInputElement).value).toBe('hello')
  await next(w)
  expect(step(w)).toBe('placement')
}

describe('AddServiceView', () => {
  it('sends the dry run with the chosen placement and shows its field error on that component, staying there', async () => {
    const s = server([() => problem(422, 'component hello_server needs at least 1 unit, got 0', 'placement.hello_server')])
    const w = await mountAs('admin', s.fetch)
    await toPlacement(w)
    expect(w.get('[data-testid="placement-hello_server"]').text()).toContain('1+')
    await pick(w, 'placement-hello_server', 'h2')
    await next(w)
    const runs = dryRuns(s.calls)
    expect(runs).toHaveLength(1)
    expect(runs[0]?.path).toBe('/clusters/demo/services')
    expect(runs[0]?.body).toEqual({ name: 'hello', stack: 'demo', version: '1.0.0', service: 'hello', placement: { hello_server: ['h2'] } })
    const err = w.get('[data-testid="placement-hello_server"] [data-testid="field-error-placement.hello_server"]')
    expect(err.text()).toBe('component hello_server needs at least 1 unit, got 0')
    expect(w.find('[data-testid="problem"]').exists()).toBe(false)
    expect(step(w)).toBe('placement')
    expect(w.vm.$route.query.step).toBe('placement')
    // The server accepts the placement now: on to the configuration.
    await next(w)
    expect(step(w)).toBe('configuration')
    expect(w.vm.$route.query.step).toBe('configuration')
  })

  it('shows a problem without a field above the form', async () => {
    const s = server([() => problem(422, 'the template does not render')])
    const w = await mountAs('admin', s.fetch)
    await toPlacement(w)
    await pick(w, 'placement-hello_server', 'h1')
    await next(w)
    expect(w.get('[data-testid="problem-detail"]').text()).toBe('the template does not render')
    expect(step(w)).toBe('placement')
  })

  it('sends only the config values changed from the default, then deploys and opens the job', async () => {
    const s = server([])
    const w = await mountAs('admin', s.fetch)
    await toPlacement(w)
    await pick(w, 'placement-hello_server', 'h1')
    await next(w)
    expect(step(w)).toBe('configuration')
    const greeting = w.get('[data-testid="config-hello.conf-greeting"] input')
    expect(greeting.attributes('placeholder')).toBe('hello')
    await greeting.setValue('hi there')
    // Typed back to its default: not a change.
    const interval = w.get('[data-testid="config-hello.conf-interval"] input')
    await interval.setValue('5')
    await interval.trigger('blur')
    expect(w.get('[data-testid="config-hello.conf-token"] input').attributes('type')).toBe('password')
    await next(w)
    const runs = dryRuns(s.calls)
    expect(runs).toHaveLength(2)
    expect((runs[1]?.body as { configs?: unknown }).configs).toEqual({ 'hello.conf': { greeting: 'hi there' } })
    expect(step(w)).toBe('review')
    const review = w.get('[data-testid="wizard-review"]')
    expect(review.get('[data-testid="review-host-h1"]').text()).toContain('hello_server')
    expect(review.get('[data-testid="review-config-hello.conf-greeting"]').text()).toContain('hi there')

    await w.get('[data-testid="wizard-deploy"]').trigger('click')
    await flushPromises()
    const writes = s.calls.filter((c) => c.method === 'POST' && c.query.get('dry_run') === null)
    expect(writes.map((c) => c.path)).toEqual(['/clusters/demo/services', '/clusters/demo/jobs'])
    expect(writes[0]?.body).toEqual({
      name: 'hello',
      stack: 'demo',
      version: '1.0.0',
      service: 'hello',
      placement: { hello_server: ['h1'] },
      configs: { 'hello.conf': { greeting: 'hi there' } },
    })
    expect(writes[1]?.body).toEqual({ command: 'deploy', target: { service: 'hello' } })
    expect(w.vm.$route.name).toBe('job')
    expect(w.vm.$route.params.id).toBe('7')
  })

  it('goes back to the first step when a deep link to a later step has no state', async () => {
    const s = server([])
    wrapper = await mountView(AddServiceView, {
      role: 'admin',
      fetch: s.fetch,
      routes: [
        { path: '/clusters/:cluster/services/new', name: 'add-service' },
        { path: '/jobs/:id', name: 'job' },
      ],
      at: '/clusters/demo/services/new?step=review',
    })
    await flushPromises()
    expect(step(wrapper)).toBe('stack')
    expect(wrapper.vm.$route.query.step).toBe('stack')
  })

  it('tells a user whose role cannot add services so, with no wizard', async () => {
    const w = await mountAs('operator', server([]).fetch)
    expect(w.get('[data-testid="wizard-forbidden"]').text()).toContain('operator')
    expect(w.find('[data-testid="wizard-next"]').exists()).toBe(false)
  })
})
