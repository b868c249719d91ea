import { afterEach, describe, expect, it, vi } from 'vitest'
import { flushPromises, type VueWrapper } from '@vue/test-utils'
import type { JobView, Plan, Role } from '../api/types'
import { fakeServer, json, type Call, type Routes } from '../testing/configServer'
import { mountView, unmountView } from '../testing/mountView'
import { emptyPlan } from '../testing/spec'
import SpecView from './SpecView.vue'

afterEach(() => {
  unmountView()
  localStorage.clear()
  sessionStorage.clear()
})

const SPEC = 'cluster = "demo"\n[services.hello]\nstack = "demo"\nservice = "hello"\nplacement = { hello_server = ["h1"] }\nconfigs = { "hello.conf" = { greeting = "hi" } }\n'

const changeGreeting: Plan = {
  ...emptyPlan(),
  configs: [{ service: 'hello', config_type: 'hello.conf', host: null, property: 'greeting', from: 'hello', to: 'hi' }],
  jobs: [{ command: 'reconfigure', service: 'hello', hosts: [], why: '1 property change(s) of hello' }],
}

const job = (id: number, command: string): JobView => ({
  id,
  cluster: 'demo',
  command,
  target: { service: 'hello' },
  options: {},
  state: 'QUEUED',
  created_at: 0,
})

function invalidSpec(problems: unknown): Response {
  return new Response(
    JSON.stringify({
      type: 'urn:bigmgr:problem:invalid-spec',
      title: 'Unprocessable Entity',
      status: 422,
      detail: 'the spec has 2 problem(s): line 5: …; line 6: …',
      ...(problems === undefined ? {} : { problems }),
    }),
    { status: 422, headers: { 'Content-Type': 'application/problem+json' } },
  )
}

async function mountAs(role: Role, routes: Routes): Promise<{ w: VueWrapper; find: (method: string, path: string) => Call[] }> {
  const server = fakeServer(routes)
  const w = await mountView(SpecView, {
    role,
    fetch: server.fetch,
    routes: [
      { path: '/clusters/:cluster/spec', name: 'spec' },
      { path: '/jobs/:id', name: 'job' },
    ],
    at: '/clusters/demo/spec',
  })
  return { w, find: server.find }
}

async function type(w: VueWrapper, text: string): Promise<void> {
  await w.get('[data-testid="spec-text"] textarea').setValue(text)
  await flushPromises()
}

async function click(w: VueWrapper, testid: string): Promise<void> {
  await w.get(`[data-testid="${testid}"]`).trigger('click')
  await flushPromises()
}

const lines = (w: VueWrapper, within = 'spec-plan-result'): [string | undefined, string][] =>
  w.findAll(`[data-testid="${within}"] [data-testid="plan-line"]`).map((l) => [l.attributes('data-sign'), l.text().replace(/\s+/g, ' ')])

/** The apply dialog (teleported to the body). */
const dialog = (): HTMLElement | null => document.querySelector<HTMLElement>('[data-testid="spec-apply-dialog"]')

describe('SpecView', () => {
  it('plans the text as it stands and shows every group of the plan, signed and in the CLI order', async () => {
    const plan: Plan = {
      create_cluster: true,
      hosts_to_add: [{ name: 'h4', address: '10.0.0.14' }],
      services_to_add: ['spark'],
      services_to_remove: ['old'],
      units_to_add: [{ service: 'spark', component: 'spark_master', host: 'h1', why: 'h1: the least busy (12 points)' }],
      units_to_remove: [{ service: 'old', component: 'old_server', host: 'h2' }],
      configs: [
        { service: 'zk', config_type: 'zoo.cfg', host: null, property: 'tickTime', from: 2000, to: 3000 },
        { service: 'zk', config_type: 'zookeeper-env', host: 'h3', property: 'heapSize', from: null, to: '<b>512</b>' },
      ],
      policies: [{ service: 'zk', policy: 'healing', from: { restart: false }, to: { restart: true, grace: '30s' } }],
      relations_to_add: [{ requirer: 'spark', requirer_endpoint: 'zookeeper', provider: 'zk', provider_endpoint: 'client' }],
      relations_to_remove: [{ requirer: 'old', requirer_endpoint: 'zk', provider: 'zk', provider_endpoint: 'client' }],
      jobs: [
        { command: 'stop', service: 'old', hosts: ['h2'], why: 'its units go' },
        { command: 'deploy', service: 'spark', hosts: [], why: 'service spark is new' },
      ],
      problems: ['service x is demo hello in the cluster but demo other in the spec'],
      kept: ['service y'],
    }
    const { w, find } = await mountAs('viewer', { 'POST /clusters/demo/plan': () => plan })
    expect(w.get('[data-testid="spec-plan"]').attributes('disabled')).toBeDefined()
    await type(w, SPEC)
    await click(w, 'spec-plan')
    expect(find('POST', '/clusters/demo/plan').map((c) => c.body)).toEqual([{ spec: SPEC, prune: false }])
    expect(lines(w)).toEqual([
      ['+', '+ cluster demo'],
      ['+', '+ host h4 (10.0.0.14)'],
      ['+', '+ service spark'],
      ['-', '- service old'],
      ['+', '+ unit spark_master of spark on h1 h1: the least busy (12 points)'],
      ['-', '- unit old_server of old on h2'],
      ['~', '~ zk zoo.cfg.tickTime: 2000 -> 3000'],
      ['~', '~ zk zookeeper-env.heapSize on h3: (unset) -> "<b>512</b>"'],
      ['~', '~ zk policy healing: {"restart":false} -> {"restart":true,"grace":"30s"}'],
      ['+', '+ relation spark:zookeeper -> zk:client'],
      ['-', '- relation old:zk -> zk:client'],
      ['>', '> job stop of old on h2: its units go'],
      ['>', '> job deploy of spark: service spark is new'],
      ['=', '= kept (not in the spec; Prune plans its removal): service y'],
      ['!', '! service x is demo hello in the cluster but demo other in the spec'],
    ])
    expect(w.get('[data-testid="plan-line-why"]').text()).toBe('h1: the least busy (12 points)')
    // Values are text, never HTML.
    expect(w.find('[data-testid="spec-plan-result"] b').exists()).toBe(false)
    const classes = w.findAll('[data-testid="plan-line"]').map((l) => l.classes()[0])
    expect(new Set(classes)).toEqual(new Set(['add', 'remove', 'change', 'job', 'kept', 'problem']))
    expect(w.find('[data-testid="plan-empty"]').exists()).toBe(false)
  })

  it('says "nothing to do" for an empty plan, and still lists what is kept', async () => {
    const { w } = await mountAs('admin', { 'POST /clusters/demo/plan': () => ({ ...emptyPlan(), kept: ['service y'] }) })
    await type(w, SPEC)
    await click(w, 'spec-plan')
    expect(w.get('[data-testid="plan-empty"]').text()).toBe('Cluster demo is as the spec says: nothing to do.')
    expect(lines(w)).toEqual([['=', '= kept (not in the spec; Prune plans its removal): service y']])
    expect(w.get('[data-testid="spec-apply"]').attributes('disabled')).toBeDefined()
    expect(w.get('[data-testid="spec-apply-why"]').text()).toBe('Nothing to apply.')
  })

  it('lists a 422\'s problems with their lines beside the editor, and a click selects the line', async () => {
    const problems = [
      { line: 5, path: 'services.hello.placement.hello_sever', message: "service hello has no component 'hello_sever'" },
      { line: 6, path: 'services.hello.configs', message: 'property greeting: got a number, but it needs a string' },
    ]
    const { w } = await mountAs('admin', { 'POST /clusters/demo/plan': () => invalidSpec(problems) })
    await type(w, SPEC)
    await click(w, 'spec-plan')
    const listed = w.findAll('[data-testid="spec-problem"]')
    expect(listed.map((p) => p.attributes('data-line'))).toEqual(['5', '6'])
    expect(listed[0]?.text()).toContain('line 5')
    expect(listed[0]?.text()).toContain('services.hello.placement.hello_sever')
    expect(listed[1]?.text()).toContain('property greeting: got a number, but it needs a string')
    expect(w.get('[data-testid="spec-problems"] h2').text()).toBe('The spec has 2 problem(s)')
    // The problems are shown once: not again as the raw problem text.
    expect(w.find('[data-testid="problem"]').exists()).toBe(false)
    expect(w.find('[data-testid="spec-plan-result"]').exists()).toBe(false)
    expect(w.get('[data-testid="spec-apply"]').attributes('disabled')).toBeDefined()
    await click(w, 'spec-problem-line-5')
    const area = w.get<HTMLTextAreaElement>('[data-testid="spec-text"] textarea').element
    expect(document.activeElement).toBe(area)
    expect(SPEC.slice(area.selectionStart, area.selectionEnd)).toBe('placement = { hello_server = ["h1"] }')
  })

  it('shows a 422 without listed problems, and any other refusal, as the server wrote it', async () => {
    const { w } = await mountAs('viewer', { 'POST /clusters/demo/plan': () => invalidSpec(undefined) })
    await type(w, SPEC)
    await click(w, 'spec-plan')
    expect(w.find('[data-testid="spec-problems"]').exists()).toBe(false)
    expect(w.get('[data-testid="problem-detail"]').text()).toBe('the spec has 2 problem(s): line 5: …; line 6: …')
  })

  it('offers an input for each secret reference and sends the values keyed env:NAME / file:PATH, never storing them', async () => {
    const setItem = vi.spyOn(Storage.prototype, 'setItem')
    const { w, find } = await mountAs('admin', { 'POST /clusters/demo/plan': () => changeGreeting })
    expect(w.find('[data-testid="spec-secrets"]').exists()).toBe(false)
    const text = `${SPEC}[services.db]\nconfigs = { "db.conf" = { password = { env = "DB_PASS" }, tls_key = { file = "/etc/bm/key.pem" }, other = { env = "UNSET" } } }\n`
    await type(w, text)
    const inputs = w.findAll('[data-testid="spec-secrets"] input')
    expect(inputs.map((i) => i.attributes('aria-label'))).toEqual(['env:DB_PASS', 'file:/etc/bm/key.pem', 'env:UNSET'])
    expect(inputs.map((i) => i.attributes('type'))).toEqual(['password', 'password', 'password'])
    await w.get('[data-testid="spec-secret-env:DB_PASS"] input').setValue('s3cret-pw')
    await w.get('[data-testid="spec-secret-file:/etc/bm/key.pem"] input').setValue('-----KEY-----')
    await flushPromises()
    expect(w.get('[data-testid="spec-secrets-missing"]').text()).toBe('1 reference(s) without a value.')
    await click(w, 'spec-plan')
    expect(find('POST', '/clusters/demo/plan')[0]?.body).toEqual({
      spec: text,
      prune: false,
      secrets: { 'env:DB_PASS': 's3cret-pw', 'file:/etc/bm/key.pem': '-----KEY-----' },
    })
    // A reference taken out of the text is no longer sent.
    await type(w, text.replace('{ env = "DB_PASS" }', '"plain"'))
    await click(w, 'spec-plan')
    expect(find('POST', '/clusters/demo/plan')[1]?.body).toMatchObject({ secrets: { 'file:/etc/bm/key.pem': '-----KEY-----' } })
    expect((find('POST', '/clusters/demo/plan')[1]?.body as { secrets: object }).secrets).not.toHaveProperty('env:DB_PASS')
    // Nothing of them is kept in the browser's storage.
    const stored = [localStorage, sessionStorage].flatMap((s) => Object.keys(s).map((k) => s.getItem(k) ?? ''))
    expect(stored.some((v) => v.includes('s3cret-pw') || v.includes('KEY'))).toBe(false)
    expect(setItem.mock.calls.some((c) => c.some((a) => a.includes('s3cret-pw')))).toBe(false)
    setItem.mockRestore()
  })

  it('hides Apply from viewers and operators, who still plan', async () => {
    for (const role of ['viewer', 'operator'] as const) {
      const { w, find } = await mountAs(role, { 'POST /clusters/demo/plan': () => changeGreeting })
      await type(w, SPEC)
      await click(w, 'spec-plan')
      expect(find('POST', '/clusters/demo/plan')).toHaveLength(1)
      expect(lines(w)).toHaveLength(2)
      expect(w.find('[data-testid="spec-apply"]').exists()).toBe(false)
      expect(w.get('[data-testid="spec-apply-forbidden"]').text()).toBe('Applying a spec needs the admin role; you can plan one.')
      unmountView()
    }
  })

  it('applies only the text just planned, after a confirmation repeating the counts, then links the jobs', async () => {
    const { w, find } = await mountAs('admin', {
      'POST /clusters/demo/plan': () => changeGreeting,
      'POST /clusters/demo/apply': () => json({ plan: changeGreeting, jobs: [job(41, 'reconfigure')] }, 202),
    })
    const apply = (): HTMLButtonElement => w.get<HTMLButtonElement>('[data-testid="spec-apply"]').element
    expect(apply().disabled).toBe(true)
    expect(w.get('[data-testid="spec-apply-why"]').text()).toBe('Plan this spec first.')
    await type(w, SPEC)
    expect(apply().disabled).toBe(true)
    await click(w, 'spec-plan')
    expect(apply().disabled).toBe(false)

    // Edited after the plan: the plan is marked out of date and Apply waits for a new one.
    await type(w, `${SPEC}# edited\n`)
    expect(apply().disabled).toBe(true)
    expect(w.get('[data-testid="spec-plan-result"]').attributes('data-stale')).toBe('true')
    expect(w.find('[data-testid="spec-plan-stale"]').exists()).toBe(true)
    expect(w.get('[data-testid="spec-apply-why"]').text()).toBe('Changed since the plan: plan again.')
    // Back to the planned text: the plan holds again. Prune ticked: it does not.
    await type(w, SPEC)
    expect(apply().disabled).toBe(false)
    await click(w, 'spec-prune')
    expect(apply().disabled).toBe(true)
    await click(w, 'spec-prune')
    expect(apply().disabled).toBe(false)

    // The confirmation repeats the counts; Cancel applies nothing.
    await click(w, 'spec-apply')
    const counts = [...(dialog()?.querySelectorAll('[data-testid^="spec-count-"]') ?? [])].map((r) =>
      [...r.querySelectorAll('th, td')].map((c) => c.textContent.trim()).join(' '),
    )
    expect(counts).toContain('Property changes 1')
    expect(counts).toContain('Jobs to run 1')
    expect(counts).toContain('Services to remove 0')
    expect(dialog()?.querySelector('[data-testid="spec-apply-prune-warning"]')).toBeNull()
    dialog()?.querySelector<HTMLButtonElement>('[data-testid="spec-apply-cancel"]')?.click()
    await flushPromises()
    expect(find('POST', '/clusters/demo/apply')).toHaveLength(0)

    await click(w, 'spec-apply')
    dialog()?.querySelector<HTMLButtonElement>('[data-testid="spec-apply-confirm"]')?.click()
    await flushPromises()
    expect(find('POST', '/clusters/demo/apply').map((c) => c.body)).toEqual([{ spec: SPEC, prune: false }])
    expect(w.get('[data-testid="spec-job-41"]').attributes('href')).toBe('/jobs/41')
    expect(w.get('[data-testid="spec-job-41"]').text()).toBe('Job 41: reconfigure (QUEUED)')
    expect(lines(w, 'spec-applied')).toEqual([
      ['~', '~ hello hello.conf.greeting: "hello" -> "hi"'],
      ['>', '> job reconfigure of hello: 1 property change(s) of hello'],
    ])
    // Applied: the next apply needs a new plan.
    expect(w.find('[data-testid="spec-plan-result"]').exists()).toBe(false)
    expect(apply().disabled).toBe(true)
  })

  it('warns loudly when Prune removes things, and sends prune', async () => {
    const pruning: Plan = {
      ...emptyPlan(),
      services_to_remove: ['old'],
      units_to_remove: [{ service: 'old', component: 'old_server', host: 'h1' }],
      jobs: [{ command: 'stop', service: 'old', hosts: ['h1'], why: 'service old goes' }],
    }
    const { w, find } = await mountAs('admin', {
      'POST /clusters/demo/plan': () => pruning,
      'POST /clusters/demo/apply': () => json({ plan: pruning, jobs: [job(7, 'stop')] }, 202),
    })
    await type(w, SPEC)
    await click(w, 'spec-prune')
    await click(w, 'spec-plan')
    expect(find('POST', '/clusters/demo/plan')[0]?.body).toEqual({ spec: SPEC, prune: true })
    expect(lines(w).map(([s]) => s)).toEqual(['-', '-', '>'])
    await click(w, 'spec-apply')
    const warning = dialog()?.querySelector('[data-testid="spec-apply-prune-warning"]')
    expect(warning?.textContent).toContain('This removes 2 thing(s)')
    expect(dialog()?.querySelector('[data-testid="spec-count-servicesRemoved"]')?.classList.contains('removing')).toBe(true)
    const confirm = dialog()?.querySelector<HTMLButtonElement>('[data-testid="spec-apply-confirm"]')
    expect(confirm?.textContent.trim()).toBe('Apply and remove 2')
    confirm?.click()
    await flushPromises()
    expect(find('POST', '/clusters/demo/apply')[0]?.body).toEqual({ spec: SPEC, prune: true })
    expect(w.get('[data-testid="spec-job-7"]').attributes('href')).toBe('/jobs/7')
  })

  it('shows an apply\'s spec problems by line and its other refusals as the server wrote them', async () => {
    let answer: Response = invalidSpec([{ line: 2, path: 'services.hello', message: 'unknown stack' }])
    const { w } = await mountAs('admin', { 'POST /clusters/demo/plan': () => changeGreeting, 'POST /clusters/demo/apply': () => answer })
    await type(w, SPEC)
    await click(w, 'spec-plan')
    await click(w, 'spec-apply')
    dialog()?.querySelector<HTMLButtonElement>('[data-testid="spec-apply-confirm"]')?.click()
    await flushPromises()
    expect(w.findAll('[data-testid="spec-problem"]').map((p) => p.attributes('data-line'))).toEqual(['2'])
    answer = new Response(JSON.stringify({ type: 'urn:bigmgr:problem:permission-denied', title: 'Forbidden', status: 403, detail: 'user u may not apply-spec' }), {
      status: 403,
      headers: { 'Content-Type': 'application/problem+json' },
    })
    await click(w, 'spec-plan')
    await click(w, 'spec-apply')
    dialog()?.querySelector<HTMLButtonElement>('[data-testid="spec-apply-confirm"]')?.click()
    await flushPromises()
    expect(w.find('[data-testid="spec-problems"]').exists()).toBe(false)
    expect(w.get('[data-testid="problem"]').attributes('data-status')).toBe('403')
    expect(w.get('[data-testid="problem-detail"]').text()).toBe('user u may not apply-spec')
  })

  it('exports the running cluster into the editor with its references, and copies and downloads it', async () => {
    const exported = `${SPEC}[services.db]\nconfigs = { "db.conf" = { password = { env = "BIGMGR_SECRET_DB_DB_CONF_PASSWORD" } } }\n`
    const { w, find } = await mountAs('viewer', {
      'GET /clusters/demo/spec': () => ({ spec: exported, references: ['env:BIGMGR_SECRET_DB_DB_CONF_PASSWORD'] }),
    })
    expect(w.get('[data-testid="spec-copy"]').attributes('disabled')).toBeDefined()
    await click(w, 'spec-export')
    expect(find('GET', '/clusters/demo/spec')).toHaveLength(1)
    expect(w.get<HTMLTextAreaElement>('[data-testid="spec-text"] textarea').element.value).toBe(exported)
    expect(w.get('[data-testid="spec-references"]').text()).toContain('env:BIGMGR_SECRET_DB_DB_CONF_PASSWORD')
    expect(w.find('[data-testid="spec-secret-env:BIGMGR_SECRET_DB_DB_CONF_PASSWORD"]').exists()).toBe(true)

    // Download: a <cluster>.toml file of the editor's text.
    const blobs: Blob[] = []
    const createObjectURL = vi.spyOn(URL, 'createObjectURL').mockImplementation((b) => {
      blobs.push(b as Blob)
      return 'blob:spec'
    })
    const revoke = vi.spyOn(URL, 'revokeObjectURL').mockImplementation(() => undefined)
    let downloaded = ''
    const anchorClick = vi.spyOn(HTMLAnchorElement.prototype, 'click').mockImplementation(function (this: HTMLAnchorElement) {
      downloaded = this.download
    })
    await click(w, 'spec-download')
    expect(downloaded).toBe('demo.toml')
    expect(await blobs[0]?.text()).toBe(exported)
    createObjectURL.mockRestore()
    revoke.mockRestore()
    anchorClick.mockRestore()

    // Copy: the editor's text.
    const writeText = vi.fn(() => Promise.resolve())
    const clipboard = Object.getOwnPropertyDescriptor(navigator, 'clipboard')
    Object.defineProperty(navigator, 'clipboard', { value: { writeText }, configurable: true })
    vi.stubGlobal('isSecureContext', true)
    await click(w, 'spec-copy')
    expect(writeText).toHaveBeenCalledWith(exported)
    expect(w.get('[data-testid="spec-copy"]').text()).toBe('Copied')
    vi.unstubAllGlobals()
    if (clipboard) Object.defineProperty(navigator, 'clipboard', clipboard)
    else Reflect.deleteProperty(navigator, 'clipboard')
  })

  it('shows an export\'s refusal, and loads a .toml file picked into the editor', async () => {
    const { w } = await mountAs('viewer', {
      'GET /clusters/demo/spec': () =>
        new Response(JSON.stringify({ type: 'urn:bigmgr:problem:not-found', title: 'Not Found', status: 404, detail: "no cluster 'demo'" }), {
          status: 404,
          headers: { 'Content-Type': 'application/problem+json' },
        }),
    })
    await click(w, 'spec-export')
    expect(w.get('[data-testid="problem-detail"]').text()).toBe("no cluster 'demo'")
    const input = w.get<HTMLInputElement>('[data-testid="spec-file"]')
    Object.defineProperty(input.element, 'files', { value: [new File(['cluster = "other"\n'], 'other.toml')], configurable: true })
    await input.trigger('change')
    await flushPromises()
    expect(w.get<HTMLTextAreaElement>('[data-testid="spec-text"] textarea').element.value).toBe('cluster = "other"\n')
    // It names another cluster than the page's: said, not refused (the page's cluster is planned).
    expect(w.get('[data-testid="spec-other-cluster"]').text()).toBe('This spec names cluster other; it is planned and applied against demo.')
  })
})
