import { afterEach, describe, expect, it, vi } from 'vitest'
import { flushPromises, type VueWrapper } from '@vue/test-utils'
import type { PipelineState, PipelineStatus, PipelineView as Pipeline, Role } from '../api/types'
import { fakeServer, json, type Call, type Routes } from '../testing/configServer'
import { mountView, unmountView } from '../testing/mountView'
import { logLines, pipelineView, sortedStatus } from '../testing/pipelines'
import PipelineView from './PipelineView.vue'

afterEach(() => {
  unmountView()
  vi.useRealTimers()
  localStorage.clear()
})

const ROUTES = [
  { path: '/clusters/:cluster/pipelines', name: 'pipelines' },
  { path: '/clusters/:cluster/pipelines/:pipeline', name: 'pipeline' },
]
const BASE = '/clusters/demo/pipelines/sorted'

function problem(status: number, type: string, detail: string, extra: object = {}): Response {
  return json({ type: `urn:bigmgr:problem:${type}`, title: 'Problem', status, detail, ...extra }, status)
}

/**
 * The pipeline's page for `role`, against a server whose pipeline `sorted` is in `state` (its
 * status and log as `testing/pipelines.ts` has them); `routes` adds or replaces answers.
 */
async function mountAs(
  role: Role,
  state: PipelineState,
  routes: Routes = {},
  extra: Partial<Pipeline> = {},
): Promise<{ w: VueWrapper; find: (method: string, path: string) => Call[]; calls: Call[] }> {
  const p = pipelineView(1, 'sorted', state, 5 * 60_000, extra)
  const server = fakeServer({
    [`GET ${BASE}`]: () => p,
    [`GET ${BASE}/status`]: () => sortedStatus(p),
    [`GET ${BASE}/logs`]: () => logLines(['run started (3 hosts in the cluster)']),
    ...routes,
  })
  const w = await mountView(PipelineView, { role, fetch: server.fetch, routes: ROUTES, at: BASE })
  return { w, find: server.find, calls: server.calls }
}

async function click(w: VueWrapper, testid: string): Promise<void> {
  await w.get(`[data-testid="${testid}"]`).trigger('click')
  await flushPromises()
}

/** The run controls on the page, by name. */
function controls(w: VueWrapper): string[] {
  return ['start', 'pause', 'resume', 'stop', 'abort'].filter((c) => w.find(`[data-testid="pipeline-${c}"]`).exists())
}

/** The confirmation's buttons (NPopconfirm teleports them to the body). */
const confirmButton = (label: string): HTMLElement | undefined =>
  [...document.querySelectorAll<HTMLElement>('.n-popconfirm__action button')].find((b) => b.textContent.trim() === label)

/** A status whose pipeline is `p`, as the server answers it. */
const statusOf = (p: Pipeline): PipelineStatus => sortedStatus(p)

describe('PipelineView controls', () => {
  it('offers operators and admins the controls the state allows, and viewers none', async () => {
    const offered: Record<PipelineState, string[]> = {
      CREATED: ['start'],
      RUNNING: ['pause', 'stop', 'abort'],
      PAUSED: ['resume', 'stop', 'abort'],
      DRAINING: ['abort'],
      STOPPED: ['start'],
      FAILED: ['start'],
      FINISHED: ['start'],
    }
    for (const [state, want] of Object.entries(offered) as [PipelineState, string[]][]) {
      for (const role of ['operator', 'admin'] as const) {
        const { w } = await mountAs(role, state)
        expect(w.get('[data-testid="pipeline-state"]').attributes('data-state')).toBe(state)
        expect(controls(w), `${role} in ${state}`).toEqual(want)
        // Scaling: the non-blocking filter, not the blocking sort.
        expect(w.find('[data-testid="pipeline-scale-filter"]').exists()).toBe(true)
        expect(w.find('[data-testid="pipeline-scale-sort"]').exists()).toBe(false)
        expect(w.find('[data-testid="pipeline-delete"]').exists()).toBe(role === 'admin')
        unmountView()
      }
      const { w } = await mountAs('viewer', state)
      expect(w.find('[data-testid="pipeline-controls"]').exists()).toBe(false)
      expect(controls(w)).toEqual([])
      expect(w.find('[data-testid="pipeline-scale-filter"]').exists()).toBe(false)
      expect(w.find('[data-testid="pipeline-delete"]').exists()).toBe(false)
      // A viewer still reads the graph, the units and the log.
      expect(w.find('[data-testid="pipeline-graph"]').exists()).toBe(true)
      expect(w.get('[data-testid="pipeline-replicas-filter"]').text()).toBe('3')
      expect(w.findAll('[data-testid="pipeline-log-line"]')).toHaveLength(1)
      unmountView()
    }
  })

  it('starts a pipeline, shows it RUNNING and follows its run', async () => {
    let state: PipelineState = 'CREATED'
    const { w, find } = await mountAs('operator', 'CREATED', {
      [`POST ${BASE}/start`]: () => {
        state = 'RUNNING'
        return pipelineView(1, 'sorted', state)
      },
      [`GET ${BASE}/status`]: () => statusOf(pipelineView(1, 'sorted', state)),
    })
    await click(w, 'pipeline-start')
    expect(find('POST', `${BASE}/start`)).toHaveLength(1)
    expect(find('POST', `${BASE}/start`)[0]?.body).toBeUndefined()
    expect(w.get('[data-testid="pipeline-state"]').text()).toBe('RUNNING')
    expect(controls(w)).toEqual(['pause', 'stop', 'abort'])
    expect(w.find('[data-testid="problem"]').exists()).toBe(false)
  })

  it('shows a 409 beside the controls, as the server wrote it, and the pipeline as it is now', async () => {
    // The pipeline finished just before the pause arrived.
    const paused = (): boolean => find('POST', `${BASE}/pause`).length > 0
    const { w, find } = await mountAs('operator', 'RUNNING', {
      [`POST ${BASE}/pause`]: () => problem(409, 'conflict', 'pipeline sorted is FINISHED: it cannot be paused'),
      [`GET ${BASE}/status`]: () => statusOf(pipelineView(1, 'sorted', paused() ? 'FINISHED' : 'RUNNING')),
    })
    await click(w, 'pipeline-pause')
    const shown = w.get('[data-testid="pipeline-control-problem"] [data-testid="problem"]')
    expect(shown.attributes('data-status')).toBe('409')
    expect(shown.get('[data-testid="problem-detail"]').text()).toBe('pipeline sorted is FINISHED: it cannot be paused')
    // The page re-read the pipeline: it finished meanwhile, so Start is what it offers now.
    expect(w.get('[data-testid="pipeline-state"]').text()).toBe('FINISHED')
    expect(controls(w)).toEqual(['start'])
  })

  it('drains with Stop, and aborts only after a confirmation', async () => {
    const { w, find } = await mountAs('operator', 'RUNNING', {
      [`POST ${BASE}/stop`]: (c) => pipelineView(1, 'sorted', c.query.get('abort') === 'true' ? 'STOPPED' : 'DRAINING'),
    })
    await click(w, 'pipeline-stop')
    expect(find('POST', `${BASE}/stop`).map((c) => c.query.get('abort'))).toEqual([null])
    unmountView()

    const again = await mountAs('operator', 'DRAINING', {
      [`POST ${BASE}/stop`]: (c) => pipelineView(1, 'sorted', c.query.get('abort') === 'true' ? 'STOPPED' : 'DRAINING', 0, { message: 'aborted' }),
    })
    await click(again.w, 'pipeline-abort')
    expect(document.body.textContent).toContain('Abort pipeline sorted now?')
    confirmButton('Cancel')?.click()
    await flushPromises()
    expect(again.find('POST', `${BASE}/stop`)).toHaveLength(0)
    await click(again.w, 'pipeline-abort')
    const confirm = confirmButton('Abort')
    if (!confirm) throw new Error('no confirmation')
    confirm.click()
    await flushPromises()
    expect(again.find('POST', `${BASE}/stop`).map((c) => c.query.get('abort'))).toEqual(['true'])
  })

  it('scales a non-blocking unit to the replicas typed, and shows a 422 beside that unit', async () => {
    let refuse = false
    const { w, find } = await mountAs('operator', 'RUNNING', {
      [`POST ${BASE}/scale`]: (c) => {
        if (refuse) return problem(422, 'invalid', 'give 1 to 64 replicas', { field: 'replicas' })
        const { unit, replicas } = c.body as { unit: string; replicas: number }
        return pipelineView(1, 'sorted', 'RUNNING', 0, { replicas: { [unit]: replicas } })
      },
    })
    const input = w.get('[data-testid="pipeline-scale-replicas-filter"] input')
    expect((input.element as HTMLInputElement).value).toBe('3')
    expect(input.attributes('aria-label')).toBe('Replicas of filter (1 to 64)')
    await input.setValue('5')
    await click(w, 'pipeline-scale-filter')
    expect(find('POST', `${BASE}/scale`).map((c) => c.body)).toEqual([{ unit: 'filter', replicas: 5 }])
    expect(w.find('[data-testid="pipeline-scale-problem-filter"]').exists()).toBe(false)

    refuse = true
    await w.get('[data-testid="pipeline-unit-filter"] form').trigger('submit')
    await flushPromises()
    const shown = w.get('[data-testid="pipeline-scale-problem-filter"] [data-testid="problem"]')
    expect(shown.attributes('data-status')).toBe('422')
    expect(shown.text()).toContain('give 1 to 64 replicas')
    expect(shown.get('[data-testid="problem-field"]').text()).toBe('replicas')
    expect(w.find('[data-testid="pipeline-control-problem"] [data-testid="problem"]').exists()).toBe(false)
  })
})

describe('PipelineView graph, state and log', () => {
  it('draws every node with its figures, and a channel holding its limit as not ready', async () => {
    const { w } = await mountAs('viewer', 'RUNNING')
    const graph = w.get('[data-testid="pipeline-graph"]')
    expect(graph.findAll('g.node')).toHaveLength(7)
    expect(graph.findAll('path.edge')).toHaveLength(6)
    const box = (name: string): Element => graph.get(`[data-testid="pipeline-node-${name}"]`).element
    const figures = (name: string): string[] => [...box(name).querySelectorAll('text')].map((x) => x.textContent.trim())

    expect(figures('files')).toEqual(['files', 'source', 'recorded 100'])
    expect(figures('filter')).toEqual(['filter', 'unit · replicas 3', 'waiting 4 · leased 2', 'processed 10 · 5 per min'])
    // A channel's backlog is what its limit holds: the batches waiting and those leased.
    expect(figures('files->filter')).toEqual(['files->filter', 'channel', 'backlog 6 / 64', 'waiting 4 · leased 2', 'processed 10'])
    expect(figures('out')).toEqual(['out', 'sink', 'processed 7', 'waiting 0'])

    // Not ready: marked, said in the box and in its label.
    const full = graph.get('[data-testid="pipeline-node-filter->sort"]')
    expect(full.attributes('data-ready')).toBe('false')
    expect(full.classes()).toContain('not-ready')
    expect(full.get('[data-testid="not-ready"]').text()).toBe('not ready')
    expect(figures('filter->sort')).toContain('backlog 12 / 12')
    expect(graph.get('[data-testid="pipeline-node-files->filter"]').find('[data-testid="not-ready"]').exists()).toBe(false)

    // Each box is labelled with all of its figures, for a screen reader and as its tooltip.
    const filter = graph.get('[data-testid="pipeline-node-filter"]')
    expect(filter.attributes('role')).toBe('img')
    expect(filter.attributes('aria-label')).toBe('Unit filter: replicas 3; batches waiting 4, leased 2, processed 10, in the last minute 5.')
    expect(filter.get('title').text()).toBe(filter.attributes('aria-label'))
    expect(full.attributes('aria-label')).toBe(
      'Channel filter->sort: backlog 12 of a limit of 12; batches waiting 12, leased 0, processed 0. Not ready: its backlog reached its limit, so what writes to it waits.',
    )
    expect(graph.get('[data-testid="pipeline-node-files"]').attributes('aria-label')).toBe('Source files: batches recorded 100.')
    expect(graph.get('[data-testid="pipeline-node-out"]').attributes('aria-label')).toBe('Sink out: batches processed 7, waiting 0.')

    // Left to right: the source first, the sink last.
    const x = (name: string): number => Number(/translate\(([\d.]+),/.exec(box(name).getAttribute('transform') ?? '')?.[1])
    expect(x('files')).toBeLessThan(x('files->filter'))
    expect(x('sort->out')).toBeLessThan(x('out'))
  })

  it('shows the server\'s names and lines as text only', async () => {
    const evil = '<img src=x onerror="alert(1)">'
    const p = pipelineView(1, 'sorted', 'FAILED', 0, { message: `unit filter failed: ${evil}` })
    const status = sortedStatus(p)
    status.nodes = status.nodes.map((n) => (n.name === 'files' ? { ...n, name: evil } : n))
    status.edges = status.edges.map(([a, b]) => [a === 'files' ? evil : a, b])
    const { w } = await mountAs('viewer', 'FAILED', {
      [`GET ${BASE}/status`]: () => status,
      [`GET ${BASE}/logs`]: () => logLines([`batch ${evil} failed`]),
    })
    expect(w.find('img').exists()).toBe(false)
    expect(w.get('[data-testid="pipeline-message"]').text()).toContain(evil)
    expect(w.get('[data-testid="pipeline-log-line"]').text()).toContain(evil)
    expect(w.get('[data-testid="pipeline-graph"]').text()).toContain('<img src=x onerr')
  })

  it('shows the state with what the run last said, and the log newest at the bottom with times', async () => {
    const { w } = await mountAs('viewer', 'FAILED', {
      [`GET ${BASE}/logs`]: () => logLines(['run started (3 hosts in the cluster)', 'filter: batch 3 processed', 'run ended: unit filter failed on batch 4: exit 1']),
    }, { message: 'unit filter failed on batch 4: exit 1' })
    expect(w.get('[data-testid="pipeline-state"]').text()).toBe('FAILED')
    const message = w.get('[data-testid="pipeline-message"]')
    expect(message.text()).toBe('unit filter failed on batch 4: exit 1')
    expect(message.attributes('role')).toBe('alert')
    const lines = w.findAll('[data-testid="pipeline-log-line"]')
    expect(lines.map((l) => l.get('.line').text())).toEqual([
      'run started (3 hosts in the cluster)',
      'filter: batch 3 processed',
      'run ended: unit filter failed on batch 4: exit 1',
    ])
    expect(lines[2]?.get('time').attributes('datetime')).toBe('2026-12-06T10:00:02.000Z')
    expect(lines[0]?.get('time').text()).toBe(new Date(Date.UTC(2026, 11, 6, 10, 0, 0)).toLocaleTimeString())
  })

  it('says when another server runs it, and when there is no log here', async () => {
    const p = pipelineView(1, 'sorted', 'RUNNING')
    const { w } = await mountAs('viewer', 'RUNNING', {
      [`GET ${BASE}/status`]: () => sortedStatus(p, false),
      [`GET ${BASE}/logs`]: () => ({ lines: [] }),
    })
    expect(w.find('[data-testid="pipeline-not-here"]').exists()).toBe(true)
    expect(w.find('[data-testid="pipeline-logs-empty"]').exists()).toBe(true)
  })

  it('keeps the page when the status cannot be read, with why', async () => {
    const { w } = await mountAs('admin', 'CREATED', {
      [`GET ${BASE}/status`]: () => problem(500, 'internal', 'the store failed'),
    })
    expect(w.get('[data-testid="pipeline-definition"]').text()).toContain('[units.sort]')
    expect(w.get('[data-testid="problem-detail"]').text()).toBe('the store failed')
    expect(w.find('[data-testid="pipeline-graph"]').exists()).toBe(false)
    expect(controls(w)).toEqual(['start'])
  })
})

describe('PipelineView polling', () => {
  it('re-reads status and log every 2 s while it runs, stops once it finished, and stops when left', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] })
    let state: PipelineState = 'RUNNING'
    let processed = 10
    const { w, find } = await mountAs('viewer', 'RUNNING', {
      [`GET ${BASE}`]: () => pipelineView(1, 'sorted', state),
      [`GET ${BASE}/status`]: () => {
        const s = sortedStatus(pipelineView(1, 'sorted', state))
        s.nodes = s.nodes.map((n) => (n.name === 'out' ? { ...n, processed } : n))
        return s
      },
    })
    const statusReads = (): number => find('GET', `${BASE}/status`).length
    const logReads = (): number => find('GET', `${BASE}/logs`).length
    expect(statusReads()).toBe(1)
    expect(logReads()).toBe(1)
    await vi.advanceTimersByTimeAsync(1900)
    expect(statusReads()).toBe(1)
    await vi.advanceTimersByTimeAsync(100)
    expect(statusReads()).toBe(2)
    expect(logReads()).toBe(2)
    processed = 20
    await vi.advanceTimersByTimeAsync(2000)
    expect(statusReads()).toBe(3)
    expect(w.get('[data-testid="pipeline-node-out"]').text()).toContain('processed 20')

    // It finishes: one more read of its log (the run's last line), then no status or log reads.
    state = 'FINISHED'
    await vi.advanceTimersByTimeAsync(2000)
    expect(w.get('[data-testid="pipeline-state"]').text()).toBe('FINISHED')
    const [s, l] = [statusReads(), logReads()]
    await vi.advanceTimersByTimeAsync(20_000)
    expect(statusReads()).toBe(s)
    expect(logReads()).toBe(l)
    // Only the pipeline itself, every 5 s, to see it started again from elsewhere.
    expect(find('GET', BASE).length).toBe(4)

    // Started elsewhere: followed again.
    state = 'RUNNING'
    await vi.advanceTimersByTimeAsync(5000)
    expect(statusReads()).toBe(s + 1)
    await vi.advanceTimersByTimeAsync(2000)
    expect(statusReads()).toBe(s + 2)

    // Left: nothing more is read.
    const before = find('GET', `${BASE}/status`).length + find('GET', BASE).length
    unmountView()
    await vi.advanceTimersByTimeAsync(30_000)
    expect(find('GET', `${BASE}/status`).length + find('GET', BASE).length).toBe(before)
  })

  it('reads nothing more for a pipeline that does not run but itself, every 5 s', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'] })
    const { find } = await mountAs('viewer', 'CREATED')
    await vi.advanceTimersByTimeAsync(10_000)
    expect(find('GET', `${BASE}/status`)).toHaveLength(1)
    expect(find('GET', `${BASE}/logs`)).toHaveLength(1)
    expect(find('GET', BASE)).toHaveLength(2)
  })
})
