import { afterEach, describe, expect, it } from 'vitest'
import { flushPromises } from '@vue/test-utils'
import { defineComponent, h } from 'vue'
import type { Proposal, ProviderView, Role, ThreadView } from '../../api/types'
import { fakeServer, json, problem, type Call } from '../../testing/configServer'
import { mountView, unmountView } from '../../testing/mountView'
import { useAssistant } from '../../stores/assistant'
import ChatDrawer from './ChatDrawer.vue'
// The store loads the stream reader with the first message: loaded here already, an answer's
// first event is a flush away.
import '../../api/chat'

const Page = defineComponent({ render: () => h(ChatDrawer) })
const PROVIDER: ProviderView = { name: 'ds', base_url: 'https://api.deepseek.com/v1', model: 'deepseek-chat', default: true, has_key: true, timeout_ms: 60000, updated_at: 1 }
const THREAD: ThreadView = { id: 3, cluster: 'demo', user: 'u', title: 'why did job 12 fail?', created_at: 1 }
const PROPOSAL: Proposal = {
  id: 4,
  thread: 3,
  title: 'retry job 12',
  action: { title: 'retry job 12', method: 'POST', path: '/jobs/12/retry', body: null },
  state: 'pending',
  created_at: 2,
}

afterEach(unmountView)

/** An answer the test writes event by event; aborting its request errors it, as fetch does. */
function answer(): { respond: (c: Call) => Response; write: (event: string, data: unknown) => void; end: () => void; aborted: () => boolean } {
  const enc = new TextEncoder()
  let ctl: ReadableStreamDefaultController<Uint8Array> | null = null
  let signal: AbortSignal | null = null
  return {
    respond(c) {
      signal = c.signal
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          ctl = controller
          c.signal?.addEventListener('abort', () => {
            controller.error(new DOMException('The operation was aborted.', 'AbortError'))
          })
        },
      })
      return new Response(body, { headers: { 'Content-Type': 'text/event-stream' } })
    },
    write(event, data) {
      ctl?.enqueue(enc.encode(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`))
    },
    end() {
      ctl?.close()
    },
    aborted: () => signal?.aborted ?? false,
  }
}

const $ = (sel: string): HTMLElement | null => document.querySelector<HTMLElement>(sel)
const $$ = (sel: string): HTMLElement[] => [...document.querySelectorAll<HTMLElement>(sel)]
const text = (sel: string): string => $(sel)?.textContent.trim() ?? ''

async function open(role: Role, routes: Record<string, (c: Call) => unknown>): Promise<ReturnType<typeof fakeServer>> {
  const s = fakeServer(routes)
  await mountView(Page, { role, fetch: s.fetch, routes: [{ path: '/', name: 'overview' }, { path: '/jobs/:id', name: 'job' }], at: '/' })
  await useAssistant().show('demo')
  await flushPromises()
  return s
}

async function ask(question: string): Promise<void> {
  const chat = useAssistant()
  chat.draft = question
  await flushPromises()
  $('[data-testid="chat-send"]')?.click()
  await flushPromises()
}

describe('ChatDrawer', () => {
  it('creates a thread for the cluster, streams the answer in order, and folds tool calls away', async () => {
    const a = answer()
    const s = await open('operator', {
      'GET /assistant/providers': () => [PROVIDER],
      'GET /assistant/threads': () => [],
      'POST /assistant/threads': () => json(THREAD, 201),
      'POST /assistant/threads/3/messages': a.respond,
    })
    expect(text('[data-testid="chat-empty"]')).toContain('Ask about this cluster')
    await ask('why did job 12 fail?')
    expect(s.find('POST', '/assistant/threads').map((c) => c.body)).toEqual([{ cluster: 'demo', title: 'why did job 12 fail?' }])
    expect(s.find('POST', '/assistant/threads/3/messages').map((c) => c.body)).toEqual([{ content: 'why did job 12 fail?' }])
    expect($$('[data-testid="chat-user"]').map((e) => e.querySelector('.text')?.textContent)).toEqual(['why did job 12 fail?'])
    expect($('[data-testid="chat-stop"]')).not.toBeNull()

    a.write('token', { text: 'Job 12 ' })
    await flushPromises()
    expect(text('[data-testid="chat-assistant-text"]')).toMatch(/^Job 12/)
    a.write('tool_call', { id: 'c1', name: 'get_job', arguments: '{"id":12}' })
    a.write('tool_result', { id: 'c1', name: 'get_job', ok: true, content: 'FAILED: port 2181 in use' })
    a.write('token', { text: 'failed: ' })
    a.write('token', { text: 'a port is taken.' })
    await flushPromises()
    const tool = $('[data-testid="chat-tool"]')
    expect(tool?.tagName).toBe('DETAILS')
    expect((tool as HTMLDetailsElement).open).toBe(false)
    expect(tool?.querySelector('summary')?.textContent.trim()).toBe('Looked up get_job')
    expect(text('[data-testid="chat-tool-arguments"]')).toBe('{"id":12}')
    expect(text('[data-testid="chat-tool-result"]')).toBe('FAILED: port 2181 in use')
    // The answer before the tool, the tool, the answer after it.
    expect($$('[data-testid="chat-messages"] > [data-testid]').map((e) => e.dataset.testid)).toEqual(['chat-user', 'chat-assistant', 'chat-tool', 'chat-assistant'])
    // A mutating tool's call says it proposed something, not that it looked something up.
    a.write('tool_call', { id: 'c2', name: 'propose_retry_job', arguments: '{"job":12}' })
    await flushPromises()
    expect($$('[data-testid="chat-tool"]')[1]?.querySelector('summary')?.textContent.trim()).toBe('Proposed a change (propose_retry_job)')
    expect($$('[data-testid="chat-assistant-text"]').map((e) => e.textContent.replace('▍', ''))).toEqual(['Job 12 ', 'failed: a port is taken.'])
    a.write('done', { message: 9 })
    a.end()
    await flushPromises()
    expect($('[data-testid="chat-stop"]')).toBeNull()
    expect(useAssistant().streaming).toBe(false)
    expect(useAssistant().draft).toBe('')
  })

  it('shows model text and tool results as plain text, never as HTML', async () => {
    const a = answer()
    await open('operator', {
      'GET /assistant/providers': () => [PROVIDER],
      'GET /assistant/threads': () => [THREAD],
      'GET /assistant/threads/3': () => ({ thread: THREAD, messages: [], proposals: [] }),
      'POST /assistant/threads/3/messages': a.respond,
    })
    await ask('hi')
    a.write('token', { text: '<img src=x onerror="alert(1)"><b>bold</b>' })
    a.write('tool_call', { id: 'c', name: 'n', arguments: {} })
    a.write('tool_result', { id: 'c', name: 'n', ok: false, content: '<script>alert(2)</script>' })
    a.end()
    await flushPromises()
    expect($('[data-testid="chat-messages"] img')).toBeNull()
    expect($('[data-testid="chat-messages"] b')).toBeNull()
    expect($('[data-testid="chat-messages"] script')).toBeNull()
    expect(text('[data-testid="chat-assistant-text"]')).toBe('<img src=x onerror="alert(1)"><b>bold</b>')
    expect(text('[data-testid="chat-tool-result"]')).toBe('<script>alert(2)</script>')
    expect(text('[data-testid="chat-tool"] summary')).toContain('failed')
  })

  it('shows a proposal as a card and confirms it: the result and the job it made', async () => {
    const a = answer()
    const s = await open('operator', {
      'GET /assistant/providers': () => [PROVIDER],
      'GET /assistant/threads': () => [THREAD],
      'GET /assistant/threads/3': () => ({ thread: THREAD, messages: [], proposals: [] }),
      'POST /assistant/threads/3/messages': a.respond,
      'POST /assistant/proposals/4/confirm': () => ({
        ...PROPOSAL,
        state: 'confirmed',
        decided_at: 3,
        result: { status: 200, body: { id: 12, cluster: 'demo', command: 'start', target: { service: 'zk' }, options: {}, state: 'QUEUED', created_at: 1 } },
      }),
    })
    // The cluster's newest thread was opened: no new one is made.
    await ask('retry it')
    expect(s.find('POST', '/assistant/threads')).toEqual([])
    a.write('token', { text: 'I can retry it.' })
    a.write('proposal', PROPOSAL)
    a.write('done', { message: 10 })
    a.end()
    await flushPromises()
    const card = $('[data-testid="proposal-4"]')
    expect(card?.dataset.state).toBe('pending')
    expect(text('[data-testid="proposal-request"]')).toBe('POST /api/v1/jobs/12/retry')
    expect(s.find('POST', '/assistant/proposals/4/confirm')).toEqual([])
    $('[data-testid="proposal-confirm"]')?.click()
    await flushPromises()
    expect(s.find('POST', '/assistant/proposals/4/confirm')).toHaveLength(1)
    expect($('[data-testid="proposal-4"]')?.dataset.state).toBe('confirmed')
    expect(text('[data-testid="proposal-state"]')).toBe('confirmed')
    expect(text('[data-testid="proposal-result"]')).toContain('It answered 200.')
    expect($('[data-testid="proposal-job-12"]')?.getAttribute('href')).toBe('/jobs/12')
    expect($('[data-testid="proposal-confirm"]')).toBeNull()
  })

  it('rejects a proposal; a viewer may reject but is offered no Confirm', async () => {
    const s = await open('viewer', {
      'GET /assistant/providers': () => [PROVIDER],
      'GET /assistant/threads': () => [THREAD],
      'GET /assistant/threads/3': () => ({
        thread: THREAD,
        messages: [
          { id: 1, role: 'user', content: 'retry it', tool_calls: [], created_at: 1 },
          { id: 2, role: 'assistant', content: '', tool_calls: [{ id: 'c1', name: 'retry_job', arguments: '{"job":12}' }], created_at: 2 },
          { id: 3, role: 'tool', content: 'proposed', tool_call_id: 'c1', created_at: 3 },
        ],
        proposals: [{ ...PROPOSAL, created_at: 3 }],
      }),
      'POST /assistant/proposals/4/reject': () => ({ ...PROPOSAL, state: 'rejected', decided_at: 4 }),
    })
    expect($$('[data-testid="chat-messages"] > [data-testid]').map((e) => e.dataset.testid)).toEqual(['chat-user', 'chat-tool', 'proposal-4'])
    expect(text('[data-testid="chat-tool-result"]')).toBe('proposed')
    expect($('[data-testid="proposal-confirm"]')).toBeNull()
    $('[data-testid="proposal-reject"]')?.click()
    await flushPromises()
    expect(s.find('POST', '/assistant/proposals/4/reject')).toHaveLength(1)
    expect($('[data-testid="proposal-4"]')?.dataset.state).toBe('rejected')
  })

  it('Stop aborts the answer: its request is cancelled and what streamed is kept', async () => {
    const a = answer()
    await open('operator', {
      'GET /assistant/providers': () => [PROVIDER],
      'GET /assistant/threads': () => [THREAD],
      'GET /assistant/threads/3': () => ({ thread: THREAD, messages: [], proposals: [] }),
      'POST /assistant/threads/3/messages': a.respond,
    })
    await ask('a long answer please')
    a.write('token', { text: 'Once upon' })
    await flushPromises()
    $('[data-testid="chat-stop"]')?.click()
    await flushPromises()
    expect(a.aborted()).toBe(true)
    expect(useAssistant().streaming).toBe(false)
    expect(text('[data-testid="chat-assistant-text"]')).toBe('Once upon')
    expect(text('[data-testid="chat-cancelled"]')).toBe('(cancelled)')
    expect($('[data-testid="chat-stop"]')).toBeNull()
    expect($('[data-testid="problem"]')).toBeNull()
  })

  it("shows an error event, and a refused message's problem (the question back in the box)", async () => {
    const a = answer()
    let refuse = true
    await open('operator', {
      'GET /assistant/providers': () => [PROVIDER],
      'GET /assistant/threads': () => [THREAD],
      'GET /assistant/threads/3': () => ({ thread: THREAD, messages: [], proposals: [] }),
      'POST /assistant/threads/3/messages': (c) => {
        if (refuse) {
          refuse = false
          return problem(502, 'the provider ds answered 401: invalid api key')
        }
        return a.respond(c)
      },
    })
    await ask('hello?')
    expect(text('[data-testid="problem-detail"]')).toBe('the provider ds answered 401: invalid api key')
    expect(useAssistant().draft).toBe('hello?')
    expect($$('[data-testid="chat-user"]')).toHaveLength(0)
    await ask('hello again')
    expect($('[data-testid="problem-detail"]')).toBeNull()
    a.write('token', { text: 'Hel' })
    a.write('error', { title: 'the provider timed out', detail: 'no answer within 60 s' })
    a.end()
    await flushPromises()
    expect(text('[data-testid="chat-stream-error"]')).toContain('the provider timed out')
    expect(text('[data-testid="chat-stream-error"] [data-testid="problem-detail"]')).toBe('no answer within 60 s')
    expect(text('[data-testid="chat-assistant-text"]')).toBe('Hel')
  })

  it('says when no model is configured, how an admin adds one, and points to the advisor', async () => {
    await open('admin', { 'GET /assistant/providers': () => [], 'GET /assistant/threads': () => [] })
    const alert = text('[data-testid="chat-no-provider"]')
    expect(alert).toContain('No model provider is configured')
    expect(alert).toContain('PUT /api/v1/assistant/providers/{name}')
    expect($('[data-testid="chat-advisor-link"]')?.getAttribute('href')).toBe('/')
    useAssistant().draft = 'anything'
    await flushPromises()
    expect($('[data-testid="chat-send"]')?.hasAttribute('disabled')).toBe(true)
    unmountView()
    await open('viewer', { 'GET /assistant/providers': () => [], 'GET /assistant/threads': () => [] })
    expect(text('[data-testid="chat-no-provider"]')).toContain('An admin adds one with PUT /api/v1/assistant/providers/{name}')
  })
})
