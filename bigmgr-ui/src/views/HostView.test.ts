import { afterEach, describe, expect, it } from 'vitest'
import { flushPromises, type VueWrapper } from '@vue/test-utils'
import type { AlertView, Finding, HostSeriesView, HostTaskView, HostView as Host, MaintenanceView, Role } from '../api/types'
import { mountView, unmountView } from '../testing/mountView'
import { useAssistant } from '../stores/assistant'
import HostView from './HostView.vue'

const host: Host = {
  id: 1,
  name: 'h1',
  cluster: 'demo',
  address: '127.0.0.2',
  state: 'ONLINE',
  last_heartbeat: 1000,
  units: [],
}
const tasks: HostTaskView[] = [
  { id: 31, job: 9, command: 'restart', stage_command: 'stop', service: 'hello', component: 'hello_server', state: 'FAILED', attempt: 2, exit_code: 3, started_at: 1000, finished_at: 4000 },
  { id: 30, job: 8, command: 'deploy', stage_command: 'install', service: 'hello', component: 'hello_server', state: 'SUCCEEDED', attempt: 1, exit_code: 0, started_at: 500, finished_at: 900 },
]
const series: HostSeriesView = { host: 'h1', at: [1, 2, 3], cpu_percent: [10, 20, 30], memory_percent: [50] }
const alerts: AlertView[] = [
  { id: 1, definition: 'unit_down', state: 'WARNING', text: 'hello_server on h1 is STOPPED', host: 'h1', service: 'hello', unit: 'hello_server@h1', since: 0, checked_at: 0, silenced: null },
  { id: 2, definition: 'host_lost', state: 'CRITICAL', text: 'h2 is lost', host: 'h2', since: 0, checked_at: 0, silenced: null },
]

const json = (v: unknown, status = 200): Response =>
  new Response(JSON.stringify(v), { status, headers: { 'Content-Type': status < 300 ? 'application/json' : 'application/problem+json' } })
const problem = (status: number, detail: string): Response => json({ type: 'about:blank', title: 'Not Found', status, detail }, status)

afterEach(unmountView)

async function mountWith(
  answers: { tasks?: Response; metrics?: Response; advice?: Finding[] } = {},
  role: Role = 'viewer',
  windows: MaintenanceView[] = [],
): Promise<{ w: VueWrapper; urls: string[]; posted: unknown[] }> {
  const urls: string[] = []
  const posted: unknown[] = []
  const w = await mountView(HostView, {
    role,
    fetch: (input, init) => {
      const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url
      urls.push(url)
      const path = url.split('?')[0] ?? ''
      if (path.endsWith('/maintenance') && init?.method === 'POST') {
        const body = JSON.parse(init.body as string) as { host: string; reason?: string }
        posted.push(body)
        windows.push({ id: 5, host: body.host, until: Date.now() + 3_600_000, reason: body.reason ?? '', by: 'u', created_at: Date.now() })
        return Promise.resolve(json(windows.at(-1), 201))
      }
      if (path.endsWith('/hosts/h1')) return Promise.resolve(json(host))
      if (path.endsWith('/alerts')) return Promise.resolve(json(alerts))
      if (path.endsWith('/maintenance')) return Promise.resolve(json(windows))
      if (path.endsWith('/advice')) return Promise.resolve(json(answers.advice ?? []))
      if (path.endsWith('/hosts/h1/tasks')) return Promise.resolve(answers.tasks ?? json(tasks))
      if (path.endsWith('/hosts/h1/metrics')) return Promise.resolve(answers.metrics ?? json(series))
      return Promise.resolve(problem(404, url))
    },
    routes: [
      { path: '/clusters/:cluster/hosts/:host', name: 'host' },
      { path: '/clusters/:cluster/services/:service', name: 'service' },
      { path: '/jobs/:id', name: 'job' },
    ],
    at: '/clusters/demo/hosts/h1',
  })
  return { w, urls, posted }
}

describe('HostView', () => {
  it('shows the recent tasks on the host, newest first, each linking to its job', async () => {
    const { w, urls } = await mountWith()
    expect(urls).toContain('/api/v1/clusters/demo/hosts/h1/tasks?limit=20')
    const rows = w.get('[data-testid="host-tasks"]').findAll('[data-testid^="host-task-"]').filter((r) => r.element.tagName === 'TR')
    expect(rows.map((r) => r.attributes('data-testid'))).toEqual(['host-task-31', 'host-task-30'])
    expect(w.get('[data-testid="host-task-job-31"]').attributes('href')).toBe('/jobs/9')
    expect(w.get('[data-testid="host-task-job-30"]').attributes('href')).toBe('/jobs/8')
    const first = w.get('[data-testid="host-task-31"]')
    expect(first.get('[data-state]').attributes('data-state')).toBe('FAILED')
    expect(first.text()).toContain('hello/hello_server')
    expect(first.text()).toContain('restart · stop')
    expect(first.text()).toContain('3.0s')
  })

  it('charts CPU and memory over the last hour ("no data" with fewer than two points)', async () => {
    const { w, urls } = await mountWith()
    expect(urls).toContain('/api/v1/clusters/demo/hosts/h1/metrics?window=3600')
    expect(w.get('[data-testid="host-cpu-chart"] polyline').attributes('points')).toBe('0,57.6 160,51.2 320,44.8')
    expect(w.get('[data-testid="host-cpu-chart"]').attributes('aria-label')).toContain('now 30%')
    expect(w.get('[data-testid="host-memory-chart"]').text()).toBe('no data')
  })

  it('keeps the host shown when its tasks cannot be read, and shows why', async () => {
    const { w } = await mountWith({ tasks: problem(404, 'no such endpoint') })
    expect(w.find('[data-testid="host-facts"]').exists()).toBe(true)
    expect(w.find('[data-testid="host-tasks"]').exists()).toBe(false)
    expect(w.findAll('[data-testid="problem-detail"]').map((p) => p.text())).toEqual(['no such endpoint'])
  })

  it('"Ask about this" opens the assistant about the host, with a question naming it', async () => {
    const { w } = await mountWith()
    await w.get('[data-testid="ask-host"]').trigger('click')
    await flushPromises()
    const chat = useAssistant()
    expect(chat.open).toBe(true)
    expect(chat.cluster).toBe('demo')
    expect(chat.draft).toBe('How is host h1 in cluster demo? Is anything wrong with it or with its units?')
  })

  it("shows what the advisor finds about the host", async () => {
    const { w, urls } = await mountWith({
      advice: [{ rule: 'host.disk_full', severity: 'WARNING', title: 'the disk of h1 is 92 % full', evidence: ['/: 92 % used'], hint: 'Free space.', host: 'h1', service: null, job: null, task: null, actions: [] }],
    })
    expect(urls).toContain('/api/v1/clusters/demo/advice?host=h1')
    expect(w.get('[data-testid="finding-host.disk_full"] [data-testid="finding-title"]').text()).toBe('the disk of h1 is 92 % full')
  })

  it("shows the host's alerts only", async () => {
    const { w, urls } = await mountWith()
    expect(urls).toContain('/api/v1/clusters/demo/alerts?firing=true')
    expect(w.findAll('[data-testid^="alert-"][data-state]').map((r) => r.attributes('data-testid'))).toEqual(['alert-1'])
    expect(w.get('[data-testid="alert-count-WARNING"]').text()).toBe('1 warning')
  })

  it('lets an operator put the host in maintenance, and shows the window', async () => {
    const { w, posted } = await mountWith({}, 'operator')
    await w.get('[data-testid="maintenance-reason"] input').setValue('disk swap')
    await w.get('[data-testid="maintenance-form"]').trigger('submit')
    await flushPromises()
    expect(posted).toEqual([{ host: 'h1', for: '2h', reason: 'disk swap' }])
    expect(w.get('[data-testid="maintenance-active"]').text()).toContain('by u: disk swap')
    expect(w.find('[data-testid="maintenance-end-5"]').exists()).toBe(true)
  })

  it('shows a viewer the window without "End now", and no form', async () => {
    const { w } = await mountWith({}, 'viewer', [{ id: 4, host: 'h1', until: Date.now() + 60_000, reason: 'kernel update', by: 'admin', created_at: 0 }])
    expect(w.get('[data-testid="maintenance-active"]').text()).toContain('by admin: kernel update')
    expect(w.find('[data-testid="maintenance-end-4"]').exists()).toBe(false)
    expect(w.find('[data-testid="maintenance-form"]').exists()).toBe(false)
  })
})
