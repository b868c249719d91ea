import { afterEach, describe, expect, it } from 'vitest'
import { flushPromises, type VueWrapper } from '@vue/test-utils'
import { defineComponent, h } from 'vue'
import type { Finding, Role } from '../api/types'
import { fakeServer, json, problem } from '../testing/configServer'
import { mountView, unmountView } from '../testing/mountView'
import AdvicePanel from './AdvicePanel.vue'

const PORT: Finding = {
  rule: 'task.port_in_use',
  severity: 'CRITICAL',
  title: 'a port it needs is already taken',
  evidence: ['job 12 (start), task 40 on h1 failed (exit 1)', 'java.net.BindException: Address already in use'],
  hint: 'Stop that process, then retry the job.',
  host: 'h1',
  service: 'zk',
  job: 12,
  task: 40,
  actions: [{ title: 'retry job 12 once it is fixed', method: 'POST', path: '/jobs/12/retry', body: null }],
}
const STALE: Finding = {
  rule: 'units.stale',
  severity: 'WARNING',
  title: '2 units of hello run an older configuration',
  evidence: ['hello/hello_server on h1: config version 1 < 2'],
  hint: 'Apply the change.',
  host: null,
  service: 'hello',
  job: null,
  task: null,
  actions: [{ title: "apply hello's pending config changes", method: 'POST', path: '/clusters/demo/restart-stale', body: { service: 'hello' } }],
}

let scope: { job?: number; host?: string } = {}
const Page = defineComponent({ render: () => h(AdvicePanel, { cluster: 'demo', ...scope }) })

afterEach(unmountView)

function mountAs(role: Role, fetch: typeof globalThis.fetch, of: { job?: number; host?: string } = {}): Promise<VueWrapper> {
  scope = of
  return mountView(Page, { role, fetch, routes: [{ path: '/a', name: 'a' }, { path: '/jobs/:id', name: 'job' }, { path: '/h/:cluster/:host', name: 'host' }, { path: '/s/:cluster/:service', name: 'service' }], at: '/a' })
}

describe('AdvicePanel', () => {
  it('lists findings with severity, title, evidence in monospace and hint', async () => {
    const s = fakeServer({ 'GET /clusters/demo/advice': () => [PORT, STALE] })
    const w = await mountAs('viewer', s.fetch)
    const f = w.get('[data-testid="finding-task.port_in_use"]')
    expect(f.attributes('data-severity')).toBe('CRITICAL')
    expect(f.get('[data-testid="finding-severity"]').text()).toBe('CRITICAL')
    expect(f.get('[data-testid="finding-title"]').text()).toBe('a port it needs is already taken')
    const evidence = f.get('[data-testid="finding-evidence"]')
    expect(evidence.element.tagName).toBe('PRE')
    expect(evidence.text()).toBe('job 12 (start), task 40 on h1 failed (exit 1)\njava.net.BindException: Address already in use')
    expect(f.get('[data-testid="finding-hint"]').text()).toBe('Stop that process, then retry the job.')
    expect(f.get('[data-testid="finding-action-0"]').text()).toContain('POST /jobs/12/retry')
    expect(w.get('[data-testid="finding-units.stale"]').attributes('data-severity')).toBe('WARNING')
  })

  it('runs a suggested request only after showing it exactly and a confirmation, then links the job', async () => {
    let advice = [PORT, STALE]
    const s = fakeServer({
      'GET /clusters/demo/advice': () => advice,
      'POST /jobs/12/retry': () => {
        advice = [STALE]
        return { id: 12, cluster: 'demo', command: 'start', target: { service: 'zk' }, options: {}, state: 'QUEUED', created_at: 1 }
      },
    })
    const w = await mountAs('operator', s.fetch)
    await w.get('[data-testid="finding-task.port_in_use"] [data-testid="action-run"]').trigger('click')
    expect(s.find('POST', '/jobs/12/retry')).toHaveLength(0)
    expect(w.get('[data-testid="action-request"]').text()).toBe('POST /api/v1/jobs/12/retry')
    // Cancel runs nothing.
    await w.get('[data-testid="action-confirm-cancel"]').trigger('click')
    expect(w.find('[data-testid="action-confirm"]').exists()).toBe(false)
    await w.get('[data-testid="finding-task.port_in_use"] [data-testid="action-run"]').trigger('click')
    await w.get('[data-testid="action-confirm-run"]').trigger('click')
    await flushPromises()
    expect(s.find('POST', '/jobs/12/retry')).toHaveLength(1)
    expect(s.find('POST', '/jobs/12/retry')[0]?.body).toBeUndefined()
    expect(w.get('[data-testid="advice-result"]').text()).toContain('Ran POST /api/v1/jobs/12/retry.')
    expect(w.get('[data-testid="advice-job-12"]').text()).toBe('Job 12 (start): QUEUED')
    expect(w.get('[data-testid="advice-job-12"]').attributes('href')).toBe('/jobs/12')
    // Re-read after running: the finding is gone.
    expect(w.find('[data-testid="finding-task.port_in_use"]').exists()).toBe(false)
  })

  it('sends the body as suggested and shows the server problem when refused', async () => {
    const s = fakeServer({
      'GET /clusters/demo/advice': () => [STALE],
      'POST /clusters/demo/restart-stale': () => problem(409, 'a job of hello is running'),
    })
    const w = await mountAs('operator', s.fetch)
    await w.get('[data-testid="action-run"]').trigger('click')
    expect(w.get('[data-testid="action-request"]').text()).toBe('POST /api/v1/clusters/demo/restart-stale\n{\n  "service": "hello"\n}')
    await w.get('[data-testid="action-confirm-run"]').trigger('click')
    await flushPromises()
    expect(s.find('POST', '/clusters/demo/restart-stale').map((c) => c.body)).toEqual([{ service: 'hello' }])
    expect(w.get('[data-testid="advice-failed"]').text()).toBe('POST /api/v1/clusters/demo/restart-stale failed:')
    expect(w.get('[data-testid="problem-detail"]').text()).toBe('a job of hello is running')
    expect(w.find('[data-testid="advice-result"]').exists()).toBe(false)
  })

  it('links every job restart-stale made', async () => {
    const job = (id: number): object => ({ id, cluster: 'demo', command: 'restart', target: { service: 'hello' }, options: {}, state: 'QUEUED', created_at: 1 })
    const s = fakeServer({ 'GET /clusters/demo/advice': () => [STALE], 'POST /clusters/demo/restart-stale': () => json([job(5), job(6)], 202) })
    const w = await mountAs('operator', s.fetch)
    await w.get('[data-testid="action-run"]').trigger('click')
    await w.get('[data-testid="action-confirm-run"]').trigger('click')
    await flushPromises()
    expect(w.findAll('[data-testid^="advice-job-"]').map((a) => a.attributes('data-testid'))).toEqual(['advice-job-5', 'advice-job-6'])
  })

  it('offers a viewer no Run button, but shows what the request would be', async () => {
    const s = fakeServer({ 'GET /clusters/demo/advice': () => [PORT, STALE] })
    const w = await mountAs('viewer', s.fetch)
    expect(w.find('[data-testid="action-run"]').exists()).toBe(false)
    expect(w.findAll('button').length).toBe(0)
    expect(w.get('[data-testid="finding-units.stale"]').text()).toContain('POST /clusters/demo/restart-stale')
  })

  it('asks about one job or one host; says when nothing is found', async () => {
    const s = fakeServer({ 'GET /clusters/demo/advice': () => [] })
    const w = await mountAs('operator', s.fetch, { job: 12 })
    expect(s.find('GET', '/clusters/demo/advice').map((c) => c.query.toString())).toEqual(['job=12'])
    expect(w.get('[data-testid="advice-none"]').text()).toBe('The advisor finds nothing wrong.')
    unmountView()
    const s2 = fakeServer({ 'GET /clusters/demo/advice': () => [] })
    await mountAs('operator', s2.fetch, { host: 'h1' })
    expect(s2.find('GET', '/clusters/demo/advice').map((c) => c.query.toString())).toEqual(['host=h1'])
  })
})
