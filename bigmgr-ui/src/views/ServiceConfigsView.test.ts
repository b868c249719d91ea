import { afterEach, describe, expect, it } from 'vitest'
import { flushPromises, type VueWrapper } from '@vue/test-utils'
import type { ConfigDiffView, ConfigVersionView, Role, ServiceView, UnitStatusView } from '../api/types'
import { mountView, unmountView } from '../testing/mountView'
import { useAssistant } from '../stores/assistant'
import { demoStack, fakeServer, json, paged, type Routes } from '../testing/configServer'
import ServiceConfigsView from './ServiceConfigsView.vue'

const stacks = demoStack([
  { name: 'greeting', type: 'string', default: 'hello', description: 'What it writes.', required: true, secret: false },
  { name: 'interval', type: 'int', default: 5, description: 'Seconds.', required: true, secret: false },
  { name: 'verbose', type: 'bool', default: false, description: 'More log lines.', required: false, secret: false },
])

const service: ServiceView = {
  id: 1,
  name: 'hello',
  stack: 'demo',
  stack_version: '1.0.0',
  service: 'hello',
  created_at: 0,
  config_version: 3,
  configs: {},
  host_overrides: {},
  units: [
    { id: 11, component: 'hello_server', host: 'h1', state: 'STARTED', stale: false },
    { id: 12, component: 'hello_server', host: 'h2', state: 'STARTED', stale: false },
  ],
}

const version = (n: number, configs: ConfigVersionView['configs'], message: string): ConfigVersionView => ({
  service: 'hello',
  version: n,
  author: 'alice',
  created_at: 1700000000000 + n,
  message,
  configs,
  host_overrides: n === 3 ? { h2: { 'hello.conf': { interval: 20 } } } : {},
})
const versions = [
  version(1, {}, 'created'),
  version(2, { 'hello.conf': { greeting: 'hi' } }, 'friendlier'),
  version(3, { 'hello.conf': { greeting: 'hey', interval: 10 } }, 'slower'),
]

const diffs: Record<string, ConfigDiffView[]> = {
  '2-3': [
    { config_type: 'hello.conf', property: 'greeting', from: 'hi', to: 'hey' },
    { config_type: 'hello.conf', property: 'interval', to: 10 },
    { config_type: 'hello.conf', host: 'h2', property: 'interval', to: 20 },
  ],
  '1-3': [{ config_type: 'hello.conf', property: 'greeting', to: 'hey' }],
}

function unit(id: number, host: string, stale: boolean): UnitStatusView {
  return { id, service: 'hello', component: 'hello_server', host, state: 'STARTED', desired_version: 3, applied_version: stale ? 2 : 3, stale, stale_reason: stale ? 'config version 2 < 3' : null }
}

function server(opts: { stale?: boolean; extra?: Routes } = {}): ReturnType<typeof fakeServer> {
  return fakeServer({
    'GET /stacks': () => paged(stacks),
    'GET /clusters/demo/services/hello': () => service,
    'GET /clusters/demo/services/hello/configs': () => versions,
    'GET /clusters/demo/units': () => [
      unit(11, 'h1', opts.stale ?? false),
      unit(12, 'h2', false),
      { ...unit(21, 'h1', true), service: 'other' },
    ],
    'GET /clusters/demo/services/hello/configs/diff': (c) => diffs[`${c.query.get('from') ?? ''}-${c.query.get('to') ?? ''}`] ?? [],
    'GET /clusters/demo/units/11/files': () => [{ path: 'conf/hello.conf', content: 'greeting = "hey"\ninterval = 10\n' }],
    'PATCH /clusters/demo/services/hello/configs': () => version(4, {}, 'new'),
    'POST /clusters/demo/services/hello/configs/rollback': () => version(4, {}, 'rollback'),
    'POST /clusters/demo/restart-stale': () => json([{ id: 9, state: 'QUEUED' }], 202),
    ...opts.extra,
  })
}

let wrapper: VueWrapper | null = null
afterEach(unmountView)

async function mountAs(role: Role, fetch: typeof globalThis.fetch, at = '/clusters/demo/services/hello/configs'): Promise<VueWrapper> {
  wrapper = await mountView(ServiceConfigsView, {
    role,
    fetch,
    routes: [
      { path: '/clusters/:cluster/services/:service/configs', name: 'service-configs' },
      { path: '/clusters/:cluster/configs', name: 'configs' },
      { path: '/jobs/:id', name: 'job' },
    ],
    at,
  })
  await flushPromises()
  return wrapper
}

const input = (w: VueWrapper, prop: string): HTMLInputElement => w.get(`[data-testid="config-hello.conf-${prop}"] input`).element as HTMLInputElement

async function save(w: VueWrapper): Promise<void> {
  await w.get('[data-testid="config-save"]').trigger('click')
  await flushPromises()
}

describe('ServiceConfigsView', () => {
  it("shows the current version's values and saves a merge patch of only the changed property with the message", async () => {
    const s = server()
    const w = await mountAs('operator', s.fetch)
    expect(input(w, 'greeting').value).toBe('hey')
    expect(input(w, 'interval').value).toBe('10')
    expect(w.get('[data-testid="config-save"]').attributes('disabled')).toBeDefined()
    await w.get('[data-testid="config-hello.conf-greeting"] input').setValue('good morning')
    await w.get('[data-testid="config-message"] input').setValue('warmer greeting')
    await save(w)
    const patches = s.find('PATCH', '/clusters/demo/services/hello/configs')
    expect(patches).toHaveLength(1)
    expect(patches[0]?.body).toEqual({ configs: { 'hello.conf': { greeting: 'good morning' } }, message: 'warmer greeting' })
    // Saved: the form is clean again and the page re-read.
    expect(w.find('[data-testid="config-changed-hello.conf-greeting"]').exists()).toBe(false)
    expect(s.find('GET', '/clusters/demo/services/hello/configs').length).toBeGreaterThan(1)
  })

  it('sends null for a property set back to its default, and shows a field error on its property', async () => {
    const s = server({
      extra: {
        'PATCH /clusters/demo/services/hello/configs': () =>
          new Response(JSON.stringify({ type: 'urn:bigmgr:problem:invalid', title: 'Unprocessable Entity', status: 422, detail: 'config hello.conf: property greeting: too long', field: 'configs.hello.conf.greeting' }), {
            status: 422,
            headers: { 'Content-Type': 'application/problem+json' },
          }),
      },
    })
    const w = await mountAs('operator', s.fetch)
    await w.get('[data-testid="config-reset-hello.conf-interval"]').trigger('click')
    expect(input(w, 'interval').value).toBe('')
    expect(input(w, 'interval').placeholder).toBe('5')
    await w.get('[data-testid="config-hello.conf-greeting"] input').setValue('x'.repeat(10))
    await save(w)
    expect(s.find('PATCH', '/clusters/demo/services/hello/configs')[0]?.body).toEqual({
      configs: { 'hello.conf': { interval: null, greeting: 'xxxxxxxxxx' } },
      message: '',
    })
    expect(w.get('[data-testid="config-hello.conf-greeting"] [data-testid="field-error-configs.hello.conf.greeting"]').text()).toBe(
      'config hello.conf: property greeting: too long',
    )
    expect(w.find('[data-testid="problem"]').exists()).toBe(false)
  })

  it('diffs the previous version against the current by default, side by side', async () => {
    const s = server()
    const w = await mountAs('viewer', s.fetch)
    const call = s.find('GET', '/clusters/demo/services/hello/configs/diff').at(-1)
    expect([call?.query.get('from'), call?.query.get('to')]).toEqual(['2', '3'])
    const row = w.get('[data-testid="diff-row-hello.conf-greeting"]')
    expect(row.get('[data-col="from"]').text()).toBe('hi')
    expect(row.get('[data-col="to"]').text()).toBe('hey')
    const host = w.get('[data-testid="diff-row-hello.conf-interval-h2"]')
    expect(host.text()).toContain('h2')
    expect(host.get('[data-col="from"]').text()).toBe('–')
    expect(host.get('[data-col="to"]').text()).toBe('20')
  })

  it('"Ask about this" opens the assistant with a question naming the diff', async () => {
    const s = server({ extra: { 'GET /assistant/providers': () => [], 'GET /assistant/threads': () => [] } })
    const w = await mountAs('viewer', s.fetch)
    await w.get('[data-testid="ask-diff"]').trigger('click')
    await flushPromises()
    const chat = useAssistant()
    expect(chat.open).toBe(true)
    expect(chat.cluster).toBe('demo')
    expect(chat.draft).toBe(
      'Explain the config changes of service hello in cluster demo from version 2 to version 3: what do they change, and what could they break?',
    )
    // Nothing is sent until the user sends it.
    expect(s.calls.filter((c) => c.method === 'POST')).toEqual([])
  })

  it('diffs the versions the URL names, and a chosen version goes into the URL', async () => {
    const s = server()
    const w = await mountAs('viewer', s.fetch, '/clusters/demo/services/hello/configs?from=1&to=3')
    const call = s.find('GET', '/clusters/demo/services/hello/configs/diff').at(-1)
    expect([call?.query.get('from'), call?.query.get('to')]).toEqual(['1', '3'])
    expect(w.get('[data-testid="diff-row-hello.conf-greeting"] [data-col="from"]').text()).toBe('–')
    expect(w.find('[data-testid="diff-row-hello.conf-interval"]').exists()).toBe(false)
    await w.get('[data-testid="diff-from"] .n-base-selection').trigger('click')
    await flushPromises()
    const option = [...document.querySelectorAll<HTMLElement>('.n-base-select-option')].find((o) => o.textContent.trim() === '2 · friendlier')
    option?.click()
    await flushPromises()
    expect(w.vm.$route.query).toEqual({ from: '2', to: '3' })
    expect(w.get('[data-testid="diff-row-hello.conf-greeting"] [data-col="from"]').text()).toBe('hi')
  })

  it('lists versions newest first and rolls back to an older one after a confirm', async () => {
    const s = server()
    const w = await mountAs('operator', s.fetch)
    const rows = w.findAll('[data-testid^="config-version-"]').map((r) => r.attributes('data-testid'))
    expect(rows).toEqual(['config-version-3', 'config-version-2', 'config-version-1'])
    expect(w.find('[data-testid="config-rollback-3"]').exists()).toBe(false)
    await w.get('[data-testid="config-rollback-1"]').trigger('click')
    await flushPromises()
    const confirm = [...document.querySelectorAll<HTMLElement>('.n-popconfirm__action button')].find((b) => b.textContent.trim() === 'Roll back')
    expect(confirm).toBeDefined()
    confirm?.click()
    await flushPromises()
    expect(s.find('POST', '/clusters/demo/services/hello/configs/rollback').map((c) => c.body)).toEqual([{ to: 1 }])
  })

  it("shows host overrides, removes one with a null patch, and shows a unit's rendered files", async () => {
    const s = server()
    const w = await mountAs('operator', s.fetch)
    expect(w.get('[data-testid="override-h2-hello.conf-interval"]').text()).toContain('20')
    await w.get('[data-testid="override-remove-h2-hello.conf-interval"]').trigger('click')
    await flushPromises()
    expect(s.find('PATCH', '/clusters/demo/services/hello/configs')[0]?.body).toEqual({ hosts: { h2: { 'hello.conf': { interval: null } } } })
    expect(s.find('GET', '/clusters/demo/units/11/files')).not.toHaveLength(0)
    expect(w.get('[data-testid="rendered-files"] pre').text()).toBe('greeting = "hey"\ninterval = 10')
  })

  it('shows the stale banner only when a unit of this service is stale; apply restarts them one at a time', async () => {
    const fresh = await mountAs('operator', server().fetch)
    // Another service's stale unit does not count.
    expect(fresh.find('[data-testid="stale-banner"]').exists()).toBe(false)
    fresh.unmount()
    wrapper = null

    const s = server({ stale: true })
    const w = await mountAs('operator', s.fetch)
    expect(w.get('[data-testid="stale-banner"]').attributes('data-stale')).toBe('1')
    expect(w.get('[data-testid="stale-banner"]').text()).toContain('1 unit runs an older configuration')
    await w.get('[data-testid="apply-rolling"]').trigger('click')
    await flushPromises()
    expect(s.find('POST', '/clusters/demo/restart-stale').map((c) => c.body)).toEqual([{ service: 'hello', options: { batch_size: 1 } }])
    expect(w.vm.$route.name).toBe('job')
    expect(w.vm.$route.params.id).toBe('9')
  })

  it('gives a viewer the values read-only, with no save, rollback, override or apply controls', async () => {
    const w = await mountAs('viewer', server({ stale: true }).fetch)
    expect(input(w, 'greeting').value).toBe('hey')
    expect(input(w, 'greeting').disabled).toBe(true)
    expect(w.find('[data-testid="stale-banner"]').exists()).toBe(true)
    expect(w.find('[data-testid="config-version-1"]').exists()).toBe(true)
    for (const id of ['config-save', 'config-message', 'config-rollback-1', 'config-rollback-2', 'apply-rolling', 'override-add', 'override-remove-h2-hello.conf-interval', 'config-reset-hello.conf-greeting']) {
      expect(w.find(`[data-testid="${id}"]`).exists(), id).toBe(false)
    }
  })
})
