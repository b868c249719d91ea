import { afterEach, describe, expect, it } from 'vitest'
import { flushPromises, type VueWrapper } from '@vue/test-utils'
import type { Component } from 'vue'
import type { PipelineView as Pipeline, Role } from '../api/types'
import { EXAMPLE_PIPELINE } from '../pipeline'
import { fakeServer, json, paged, type Call, type Routes } from '../testing/configServer'
import { mountView, unmountView } from '../testing/mountView'
import { sortedStatus } from '../testing/pipelines'
import NewPipelineView from './NewPipelineView.vue'
import PipelineView from './PipelineView.vue'
import PipelinesView from './PipelinesView.vue'

afterEach(() => {
  unmountView()
  localStorage.clear()
})

const MINUTE = 60_000

const pipeline = (id: number, name: string, state: Pipeline['state'], ageMs: number): Pipeline => ({
  id,
  name,
  author: 'admin',
  created_at: Date.now() - ageMs,
  state,
  definition: EXAMPLE_PIPELINE.replace('name = "sorted"', `name = "${name}"`),
})

const sorted = pipeline(1, 'sorted', 'CREATED', 5 * MINUTE)
const running = pipeline(2, 'nightly', 'RUNNING', 3 * 3600_000)

function problem(status: number, type: string, detail: string, extra: object = {}): Response {
  return json({ type: `urn:bigmgr:problem:${type}`, title: 'Problem', status, detail, ...extra }, status)
}

const ROUTES = [
  { path: '/clusters/:cluster/pipelines', name: 'pipelines' },
  { path: '/clusters/:cluster/pipelines/new', name: 'pipeline-new' },
  { path: '/clusters/:cluster/pipelines/:pipeline', name: 'pipeline' },
]

async function mountAs(
  view: Component,
  role: Role,
  at: string,
  routes: Routes = {},
): Promise<{ w: VueWrapper; find: (method: string, path: string) => Call[]; path: () => string }> {
  const server = fakeServer({
    'GET /clusters/demo/pipelines': () => paged([sorted, running]),
    'GET /clusters/demo/pipelines/sorted': () => sorted,
    'GET /clusters/demo/pipelines/sorted/status': () => sortedStatus(sorted),
    'GET /clusters/demo/pipelines/sorted/logs': () => ({ lines: [] }),
    ...routes,
  })
  const w = await mountView(view, { role, fetch: server.fetch, routes: ROUTES, at })
  return { w, find: server.find, path: () => w.vm.$router.currentRoute.value.fullPath }
}

async function click(w: VueWrapper, testid: string): Promise<void> {
  await w.get(`[data-testid="${testid}"]`).trigger('click')
  await flushPromises()
}

async function create(w: VueWrapper): Promise<void> {
  await w.get('[data-testid="pipeline-new-page"] form').trigger('submit')
  await flushPromises()
}

/** The confirmation's buttons (NPopconfirm teleports them to the body). */
const confirmButton = (label: string): HTMLElement | undefined =>
  [...document.querySelectorAll<HTMLElement>('.n-popconfirm__action button')].find((b) => b.textContent.trim() === label)

describe('PipelinesView', () => {
  it('lists the pipelines with their state, author and age, each a link to its page', async () => {
    const { w, find } = await mountAs(PipelinesView, 'admin', '/clusters/demo/pipelines')
    expect(find('GET', '/clusters/demo/pipelines')[0]?.query.get('limit')).toBe('1000')
    const rows = w.findAll('[data-testid="pipelines-table"] tbody tr')
    expect(rows.map((r) => [...r.findAll('td')].map((c) => c.text()))).toEqual([
      ['sorted', 'CREATED', 'admin', '5 min ago'],
      ['nightly', 'RUNNING', 'admin', '3 h ago'],
    ])
    expect(w.get('[data-testid="pipeline-link-sorted"]').attributes('href')).toBe('/clusters/demo/pipelines/sorted')
    expect(w.get('[data-testid="pipeline-new"]').attributes('href')).toBe('/clusters/demo/pipelines/new')
  })

  it('says when the cluster has none', async () => {
    const { w } = await mountAs(PipelinesView, 'viewer', '/clusters/demo/pipelines', { 'GET /clusters/demo/pipelines': () => paged([]) })
    expect(w.get('[data-testid="pipelines-none"]').text()).toContain('No pipelines in this cluster yet.')
    expect(w.find('[data-testid="pipelines-table"]').exists()).toBe(false)
  })

  it('gives a viewer or an operator no New pipeline, no Delete and no form', async () => {
    for (const role of ['viewer', 'operator'] as const) {
      const list = await mountAs(PipelinesView, role, '/clusters/demo/pipelines')
      expect(list.w.find('[data-testid="pipeline-sorted"]').exists()).toBe(true)
      expect(list.w.find('[data-testid="pipeline-new"]').exists()).toBe(false)
      unmountView()
      const one = await mountAs(PipelineView, role, '/clusters/demo/pipelines/sorted')
      expect(one.w.get('[data-testid="pipeline-definition"]').text()).toContain('[units.sort]')
      expect(one.w.find('[data-testid="pipeline-delete"]').exists()).toBe(false)
      unmountView()
      const form = await mountAs(NewPipelineView, role, '/clusters/demo/pipelines/new')
      expect(form.w.get('[data-testid="pipeline-new-forbidden"]').text()).toContain(`Your role (${role}) cannot create pipelines`)
      expect(form.w.find('[data-testid="pipeline-text"]').exists()).toBe(false)
      expect(form.w.find('[data-testid="pipeline-create"]').exists()).toBe(false)
      unmountView()
    }
  })
})

describe('PipelineView', () => {
  it('shows the pipeline\'s fields and its definition as written, in a monospace block', async () => {
    const { w } = await mountAs(PipelineView, 'viewer', '/clusters/demo/pipelines/sorted')
    expect(w.get('h1').text()).toBe('sorted')
    expect(w.get('[data-testid="pipeline-state"]').text()).toBe('CREATED')
    expect(w.get('[data-testid="pipeline-id"]').text()).toBe('1')
    expect(w.get('[data-testid="pipeline-author"]').text()).toBe('admin')
    expect(w.get('[data-testid="pipeline-created"]').text()).toContain('(5 min ago)')
    const def = w.get('[data-testid="pipeline-definition"]')
    expect(def.element.tagName).toBe('PRE')
    expect(def.text()).toBe(sorted.definition.trim())
  })

  it('deletes only after the confirmation, then opens the list', async () => {
    const { w, find, path } = await mountAs(PipelineView, 'admin', '/clusters/demo/pipelines/sorted', {
      'DELETE /clusters/demo/pipelines/sorted': () => new Response(null, { status: 204 }),
    })
    await click(w, 'pipeline-delete')
    expect(document.body.textContent).toContain('Delete pipeline sorted?')
    expect(find('DELETE', '/clusters/demo/pipelines/sorted')).toHaveLength(0)
    confirmButton('Cancel')?.click()
    await flushPromises()
    expect(find('DELETE', '/clusters/demo/pipelines/sorted')).toHaveLength(0)
    await click(w, 'pipeline-delete')
    const confirm = confirmButton('Delete')
    if (!confirm) throw new Error('no confirmation')
    confirm.click()
    await flushPromises()
    expect(find('DELETE', '/clusters/demo/pipelines/sorted')).toHaveLength(1)
    expect(path()).toBe('/clusters/demo/pipelines')
  })

  it('shows a refused delete (409: it runs) and stays', async () => {
    const { w, path } = await mountAs(PipelineView, 'admin', '/clusters/demo/pipelines/sorted', {
      'DELETE /clusters/demo/pipelines/sorted': () => problem(409, 'conflict', "pipeline 'sorted' is running: stop it first"),
    })
    await click(w, 'pipeline-delete')
    confirmButton('Delete')?.click()
    await flushPromises()
    expect(w.get('[data-testid="problem"]').attributes('data-status')).toBe('409')
    expect(w.get('[data-testid="problem-detail"]').text()).toBe("pipeline 'sorted' is running: stop it first")
    expect(path()).toBe('/clusters/demo/pipelines/sorted')
  })
})

describe('NewPipelineView', () => {
  it('starts from the example, sends {definition} as typed and opens the new pipeline', async () => {
    const { w, find, path } = await mountAs(NewPipelineView, 'admin', '/clusters/demo/pipelines/new', {
      'POST /clusters/demo/pipelines': (c) => json({ ...sorted, definition: (c.body as { definition: string }).definition }, 201),
    })
    const area = w.get<HTMLTextAreaElement>('[data-testid="pipeline-text"] textarea')
    expect(area.element.value).toBe(EXAMPLE_PIPELINE)
    const typed = EXAMPLE_PIPELINE.replace('replicas = 3', 'replicas = 2')
    await area.setValue(typed)
    await create(w)
    expect(find('POST', '/clusters/demo/pipelines').map((c) => c.body)).toEqual([{ definition: typed }])
    expect(path()).toBe('/clusters/demo/pipelines/sorted')
  })

  it('lists a 422\'s problems with their lines beside the editor, and a click selects the line', async () => {
    const problems = [
      { line: 14, path: 'units.filter.hosts', message: "host 'h3' is not in cluster demo" },
      { line: 20, path: 'units.sort.program', message: "stack demo's service hello has no script sort.sh" },
      { line: 0, path: '', message: 'the definition as a whole' },
    ]
    const { w, path } = await mountAs(NewPipelineView, 'admin', '/clusters/demo/pipelines/new', {
      'POST /clusters/demo/pipelines': () => problem(422, 'invalid-pipeline', 'the pipeline has 3 problem(s)', { problems }),
    })
    await create(w)
    const listed = w.findAll('[data-testid="pipeline-problem"]')
    expect(listed.map((p) => p.attributes('data-line'))).toEqual(['14', '20', '0'])
    expect(listed[0]?.text()).toContain('line 14')
    expect(listed[0]?.text()).toContain('units.filter.hosts')
    expect(listed[0]?.text()).toContain("host 'h3' is not in cluster demo")
    expect(listed[2]?.find('button').exists()).toBe(false)
    expect(w.get('[data-testid="pipeline-problems"] h2').text()).toBe('The definition has 3 problem(s)')
    // Listed once: not again as the raw problem.
    expect(w.find('[data-testid="problem"]').exists()).toBe(false)
    expect(path()).toBe('/clusters/demo/pipelines/new')
    await click(w, 'pipeline-problem-line-14')
    const area = w.get<HTMLTextAreaElement>('[data-testid="pipeline-text"] textarea').element
    expect(document.activeElement).toBe(area)
    expect(EXAMPLE_PIPELINE.slice(area.selectionStart, area.selectionEnd)).toBe('hosts = ["h1", "h2", "h3"]   # spread over these (empty: any host of the cluster)')
  })

  it('shows a 409 (the name is taken) as the server wrote it', async () => {
    const { w, path } = await mountAs(NewPipelineView, 'admin', '/clusters/demo/pipelines/new', {
      'POST /clusters/demo/pipelines': () => problem(409, 'conflict', "pipeline 'sorted' already exists in cluster demo"),
    })
    await create(w)
    expect(w.get('[data-testid="problem-detail"]').text()).toBe("pipeline 'sorted' already exists in cluster demo")
    expect(w.find('[data-testid="pipeline-problems"]').exists()).toBe(false)
    expect(path()).toBe('/clusters/demo/pipelines/new')
  })

  it('opens a picked .toml file into the editor', async () => {
    const { w } = await mountAs(NewPipelineView, 'admin', '/clusters/demo/pipelines/new')
    const input = w.get<HTMLInputElement>('[data-testid="pipeline-file"]')
    Object.defineProperty(input.element, 'files', { value: [new File(['name = "other"\n'], 'other.toml')], configurable: true })
    await input.trigger('change')
    await flushPromises()
    expect(w.get<HTMLTextAreaElement>('[data-testid="pipeline-text"] textarea').element.value).toBe('name = "other"\n')
  })
})
