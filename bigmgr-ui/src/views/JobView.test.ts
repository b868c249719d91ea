import { afterEach, describe, expect, it } from 'vitest'
import { flushPromises, type VueWrapper } from '@vue/test-utils'
import type { Finding, JobDetailView, Role } from '../api/types'
import { mountView, unmountView } from '../testing/mountView'
import { useAssistant } from '../stores/assistant'
import JobView from './JobView.vue'

const job: JobDetailView = {
  id: 5,
  cluster: 'demo',
  command: 'restart',
  target: { service: 'hello' },
  options: {},
  state: 'RUNNING',
  created_at: 0,
  stages: [
    {
      id: 1,
      name: 'RESTART hello/hello_server',
      component: 'hello_server',
      command: 'restart',
      state: 'RUNNING',
      after: [],
      tasks: [{ id: 9, host: 'h1', state: 'RUNNING', attempt: 1 }],
    },
  ],
}

const advice: Finding[] = [
  {
    rule: 'task.missing_command',
    severity: 'CRITICAL',
    title: 'a command it runs is missing',
    evidence: ['job 5 (restart), task 9 on h1 failed (exit 127)', 'line 3: frobnicate: command not found'],
    hint: 'Install it, then retry the job.',
    host: 'h1',
    service: 'hello',
    job: 5,
    task: 9,
    actions: [{ title: 'retry job 5 once it is fixed', method: 'POST', path: '/jobs/5/retry', body: null }],
  },
]
const urls: string[] = []

let push: (text: string) => void = () => undefined
let wrapper: VueWrapper | null = null

afterEach(unmountView)

async function mountAs(role: Role): Promise<VueWrapper> {
  wrapper = await mountView(JobView, {
    role,
    fetch: (input) => {
      const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url
      if (url.endsWith('/events')) {
        // An open stream the test writes to.
        const body = new ReadableStream<Uint8Array>({
          start(c) {
            push = (text) => {
              c.enqueue(new TextEncoder().encode(text))
            }
          },
        })
        return Promise.resolve(new Response(body, { headers: { 'Content-Type': 'text/event-stream' } }))
      }
      if (url.includes('/assistant/')) return Promise.resolve(new Response('[]', { headers: { 'Content-Type': 'application/json' } }))
      if (url.includes('/advice')) {
        urls.push(url)
        return Promise.resolve(new Response(JSON.stringify(advice), { headers: { 'Content-Type': 'application/json' } }))
      }
      return Promise.resolve(new Response(JSON.stringify(structuredClone(job)), { headers: { 'Content-Type': 'application/json' } }))
    },
    routes: [
      { path: '/jobs/:id', name: 'job' },
      { path: '/clusters/:cluster/jobs', name: 'jobs' },
      { path: '/clusters/:cluster/hosts/:host', name: 'host' },
      { path: '/clusters/:cluster/services/:service', name: 'service' },
    ],
    at: '/jobs/5',
  })
  return wrapper
}

describe('JobView', () => {
  it('follows live events and offers the actions the state allows to an operator', async () => {
    const w = await mountAs('operator')
    expect(w.get('[data-testid="job-connection"]').attributes('data-connection')).toBe('live')
    expect(w.get('[data-testid="job-pause"]').attributes('disabled')).toBeUndefined()
    expect(w.get('[data-testid="job-resume"]').attributes('disabled')).toBeDefined()
    push('event: job\ndata: {"id":5,"state":"PAUSED"}\n\nevent: task\ndata: {"id":9,"state":"SUCCEEDED"}\n\n')
    await flushPromises()
    expect(w.get('[data-testid="job-state"]').attributes('data-state')).toBe('PAUSED')
    expect(w.get('[data-testid="job-pause"]').attributes('disabled')).toBeDefined()
    expect(w.get('[data-testid="job-resume"]').attributes('disabled')).toBeUndefined()
    expect(w.get('[data-testid="stage-1"] .counts').text()).toBe('1 SUCCEEDED')
  })

  it('shows a viewer no job controls', async () => {
    const w = await mountAs('viewer')
    expect(w.find('[data-testid="job-state"]').exists()).toBe(true)
    expect(w.find('[data-testid="job-actions"]').exists()).toBe(false)
  })

  it('explains a failed job with the advisor\'s findings about it, read when asked', async () => {
    urls.length = 0
    const w = await mountAs('viewer')
    expect(w.find('[data-testid="job-explain"]').exists()).toBe(false)
    push('event: job\ndata: {"id":5,"state":"FAILED"}\n\n')
    await flushPromises()
    expect(urls).toEqual([])
    await w.get('[data-testid="job-explain"]').trigger('click')
    await flushPromises()
    expect(urls).toEqual(['/api/v1/clusters/demo/advice?job=5'])
    expect(w.get('[data-testid="finding-task.missing_command"] [data-testid="finding-evidence"]').text()).toContain('frobnicate: command not found')
    // A viewer reads the advice but is offered no request to run.
    expect(w.find('[data-testid="action-run"]').exists()).toBe(false)
    expect(w.get('[data-testid="job-explain"]').text()).toBe('Hide the explanation')
  })

  it('"Ask about this" opens the assistant about the job\'s cluster, with a question naming the job', async () => {
    const w = await mountAs('viewer')
    await w.get('[data-testid="ask-job"]').trigger('click')
    await flushPromises()
    const chat = useAssistant()
    expect(chat.open).toBe(true)
    expect(chat.cluster).toBe('demo')
    expect(chat.draft).toBe('Job 5 (restart) in cluster demo is RUNNING. What went wrong, and what should I do?')
  })
})
