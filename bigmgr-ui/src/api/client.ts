// The one REST client: relative `/api/v1/...` URLs (same origin), the bearer token on every
// request, problem+json decoded into a typed `ApiError`, a 401 handed to a hook (the router
// sends the user to /login), and `{items, next}` paging.
import type {
  AddService,
  AdviceScope,
  Finding,
  Proposal,
  ProviderView,
  SuggestedAction,
  ThreadDetail,
  ThreadView,
  AlertChangeView,
  AlertView,
  HealingChange,
  HealingView,
  MaintenanceView,
  StartMaintenance,
  ConfigChange,
  ConfigDiffView,
  ConfigVersionView,
  HostSeriesView,
  HostTaskView,
  Relate,
  RelationEventView,
  RelationView,
  RenderedFileView,
  ServiceCheckView,
  SnapshotView,
  Plan,
  SpecAppliedView,
  SpecBody,
  SpecExport,
  SpecProblem,
  CreatePipeline,
  PipelineLogs,
  PipelineStatus,
  PipelineView,
  ScalePipeline,
  AuditEventView,
  BootstrapHosts,
  CreateUser,
  TokenView,
  UserView,
  ClusterView,
  HostView,
  JobDetailView,
  JobOptions,
  JobView,
  JoinToken,
  Me,
  NewToken,
  Page,
  Problem,
  ServiceView,
  StackView,
  SubmitJob,
  TaskLog,
  UnitStatusView,
} from './types'

export const API_BASE = '/api/v1'

/** A failed call: the server's problem (or one made up for a network failure). */
export class ApiError extends Error {
  readonly status: number
  readonly problem: Problem

  constructor(problem: Problem) {
    super(problem.detail || problem.title)
    this.name = 'ApiError'
    this.status = problem.status
    this.problem = problem
  }

  /** The request field the server says is wrong, if it names one. */
  get field(): string | undefined {
    return this.problem.field
  }

  /** The problem kind: the last part of `type` (`urn:bigmgr:problem:<kind>`). */
  get kind(): string {
    const i = this.problem.type.lastIndexOf(':')
    return i < 0 ? this.problem.type : this.problem.type.slice(i + 1)
  }
}

export interface ClientConfig {
  /** The current bearer token, or null when signed out. */
  getToken: () => string | null
  /** Called on every 401 answer (after which the call still rejects). */
  onUnauthorized: (error: ApiError) => void
  /** The fetch to use (tests pass a fake). */
  fetch: typeof fetch
}

const config: ClientConfig = {
  getToken: () => null,
  onUnauthorized: () => undefined,
  fetch: (...args) => globalThis.fetch(...args),
}

export function configureClient(c: Partial<ClientConfig>): void {
  Object.assign(config, c)
}

/**
 * A refused text's problems as the server listed them, each with its line: a cluster spec's
 * (`invalid-spec`) or a pipeline definition's (`invalid-pipeline`), one shape for both.
 * Entries without a message are dropped; anything but an array: none.
 */
function lineProblems(v: unknown): SpecProblem[] | undefined {
  if (!Array.isArray(v)) return undefined
  const out: SpecProblem[] = []
  for (const p of v as unknown[]) {
    if (typeof p !== 'object' || p === null) continue
    const { line, path, message } = p as Record<string, unknown>
    if (typeof message !== 'string') continue
    out.push({ line: typeof line === 'number' ? line : 0, path: typeof path === 'string' ? path : '', message })
  }
  return out
}

function isProblem(v: unknown): v is Problem {
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof (v as Problem).status === 'number' &&
    typeof (v as Problem).title === 'string'
  )
}

/** Turns a non-2xx response into an ApiError, decoding problem+json when the body is one. */
export async function decodeError(res: Response): Promise<ApiError> {
  const text = await res.text().catch(() => '')
  let body: unknown = undefined
  try {
    body = text ? JSON.parse(text) : undefined
  } catch {
    body = undefined
  }
  if (isProblem(body)) {
    return new ApiError({
      type: typeof body.type === 'string' ? body.type : 'about:blank',
      title: body.title,
      status: body.status,
      detail: typeof body.detail === 'string' ? body.detail : '',
      ...(typeof body.field === 'string' ? { field: body.field } : {}),
      ...(Array.isArray(body.problems) ? { problems: lineProblems(body.problems) } : {}),
    })
  }
  return new ApiError({
    type: 'about:blank',
    title: res.statusText || `HTTP ${res.status}`,
    status: res.status,
    detail: text.slice(0, 500),
  })
}

export interface RequestOptions {
  body?: unknown
  query?: Record<string, string | number | undefined | null>
  signal?: AbortSignal
  accept?: string
}

export function url(path: string, query?: RequestOptions['query']): string {
  let u = API_BASE + path
  if (query) {
    const q = new URLSearchParams()
    for (const [k, v] of Object.entries(query)) {
      if (v !== undefined && v !== null && v !== '') q.set(k, String(v))
    }
    const s = q.toString()
    if (s) u += '?' + s
  }
  return u
}

/** Sends one request and returns the raw response once it is 2xx (errors are thrown). */
export async function send(method: string, path: string, opts: RequestOptions = {}): Promise<Response> {
  const headers: Record<string, string> = { Accept: opts.accept ?? 'application/json' }
  const token = config.getToken()
  if (token) headers.Authorization = `Bearer ${token}`
  let body: string | undefined
  if (opts.body !== undefined) {
    headers['Content-Type'] = 'application/json'
    body = JSON.stringify(opts.body)
  }
  let res: Response
  try {
    res = await config.fetch(url(path, opts.query), {
      method,
      headers,
      body,
      signal: opts.signal,
    })
  } catch (e) {
    if (e instanceof DOMException && e.name === 'AbortError') throw e
    throw new ApiError({
      type: 'urn:bigmgr-ui:problem:network',
      title: 'Network error',
      status: 0,
      detail: e instanceof Error ? e.message : String(e),
    })
  }
  if (!res.ok) {
    const err = await decodeError(res)
    if (res.status === 401) config.onUnauthorized(err)
    throw err
  }
  return res
}

export async function request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
  const res = await send(method, path, opts)
  if (res.status === 204) return undefined as T
  const text = await res.text()
  return (text ? JSON.parse(text) : undefined) as T
}

export const get = <T>(path: string, opts?: RequestOptions): Promise<T> => request<T>('GET', path, opts)
export const post = <T>(path: string, body?: unknown, opts?: RequestOptions): Promise<T> =>
  request<T>('POST', path, { ...opts, body })

/** One page: `limit` items after the cursor `after`. */
export function getPage<T>(
  path: string,
  page: { limit?: number; after?: string | null } = {},
  opts: RequestOptions = {},
): Promise<Page<T>> {
  return get<Page<T>>(path, { ...opts, query: { ...opts.query, limit: page.limit, after: page.after } })
}

/** Every item of a paged list, following `next` until the last page. */
export async function getAll<T>(path: string, opts: RequestOptions = {}, limit = 1000): Promise<T[]> {
  const out: T[] = []
  let after: string | null = null
  for (;;) {
    const page: Page<T> = await getPage<T>(path, { limit, after }, opts)
    out.push(...page.items)
    if (page.next === null || page.next === after) return out
    after = page.next
  }
}

const enc = encodeURIComponent

/** The calls the pages make. */
export const api = {
  login: (name: string, password: string) => post<NewToken>('/login', { name, password }),
  me: () => get<Me>('/me'),
  clusters: () => getAll<ClusterView>('/clusters'),
  hosts: (cluster: string) => getAll<HostView>(`/clusters/${enc(cluster)}/hosts`),
  host: (cluster: string, host: string) => get<HostView>(`/clusters/${enc(cluster)}/hosts/${enc(host)}`),
  units: (cluster: string) => get<UnitStatusView[]>(`/clusters/${enc(cluster)}/units`),
  jobsPage: (cluster: string, page: { limit?: number; after?: string | null }, state?: string) =>
    getPage<JobView>(`/clusters/${enc(cluster)}/jobs`, page, { query: { state } }),
  restartStale: (cluster: string, body: { service?: string | null; options?: JobOptions | null }) =>
    post<JobView[]>(`/clusters/${enc(cluster)}/restart-stale`, body),
  jobsAll: (cluster: string, state?: string) =>
    getAll<JobView>(`/clusters/${enc(cluster)}/jobs`, { query: { state } }),
  /** The latest `limit` jobs of a cluster, newest first (one page: the server orders them). */
  jobsNewest: (cluster: string, limit: number, state?: string) =>
    getPage<JobView>(`/clusters/${enc(cluster)}/jobs`, { limit }, { query: { state, order: 'newest' } }),
  job: (id: number, signal?: AbortSignal) => get<JobDetailView>(`/jobs/${id}`, { signal }),
  jobAction: (id: number, action: 'cancel' | 'pause' | 'resume' | 'retry') =>
    post<JobView>(`/jobs/${id}/${action}`),
  taskLog: (job: number, task: number, attempt?: number) =>
    get<TaskLog>(`/jobs/${job}/tasks/${task}/log`, { query: { attempt } }),
  services: (cluster: string) => getAll<ServiceView>(`/clusters/${enc(cluster)}/services`),
  submitJob: (cluster: string, body: SubmitJob) => post<JobView>(`/clusters/${enc(cluster)}/jobs`, body),
  /** Adds hosts over SSH (admins): the queued `bootstrap` job, one task per host. */
  bootstrapHosts: (cluster: string, body: BootstrapHosts) => post<JobView>(`/clusters/${enc(cluster)}/hosts/bootstrap`, body),
  stacks: () => getAll<StackView>('/stacks'),
  users: () => getAll<UserView>('/users'),
  createUser: (body: CreateUser) => post<UserView>('/users', body),
  deleteUser: (name: string) => request<undefined>('DELETE', `/users/${enc(name)}`),
  tokens: (user: string) => getAll<TokenView>(`/users/${enc(user)}/tokens`),
  createToken: (user: string, name: string) => post<NewToken>(`/users/${enc(user)}/tokens`, { name }),
  revokeToken: (id: number) => request<undefined>('DELETE', `/tokens/${id}`),
  auditPage: (page: { limit?: number; after?: string | null }, actor?: string) =>
    getPage<AuditEventView>('/audit', page, { query: { actor } }),
  joinToken: (cluster: string) => post<JoinToken>(`/clusters/${enc(cluster)}/join-tokens`),
  createCluster: (name: string) => post<ClusterView>('/clusters', { name }),
  /** Every check of adding a service, nothing written: the units it would get. */
  checkService: (cluster: string, body: AddService) =>
    post<ServiceCheckView>(`/clusters/${enc(cluster)}/services`, body, { query: { dry_run: 'true' } }),
  addService: (cluster: string, body: AddService) => post<ServiceView>(`/clusters/${enc(cluster)}/services`, body),
  service: (cluster: string, service: string) => get<ServiceView>(`/clusters/${enc(cluster)}/services/${enc(service)}`),
  configVersions: (cluster: string, service: string) =>
    get<ConfigVersionView[]>(`/clusters/${enc(cluster)}/services/${enc(service)}/configs`),
  configVersion: (cluster: string, service: string, version: number) =>
    get<ConfigVersionView>(`/clusters/${enc(cluster)}/services/${enc(service)}/configs/${version}`),
  configDiff: (cluster: string, service: string, from: number, to: number) =>
    get<ConfigDiffView[]>(`/clusters/${enc(cluster)}/services/${enc(service)}/configs/diff`, { query: { from, to } }),
  /** A new config version from merge patches (a `null` value removes a property). */
  updateConfigs: (cluster: string, service: string, change: ConfigChange) =>
    request<ConfigVersionView>('PATCH', `/clusters/${enc(cluster)}/services/${enc(service)}/configs`, { body: change }),
  rollbackConfigs: (cluster: string, service: string, to: number, message?: string) =>
    post<ConfigVersionView>(`/clusters/${enc(cluster)}/services/${enc(service)}/configs/rollback`, { to, message }),
  snapshots: (cluster: string) => get<SnapshotView[]>(`/clusters/${enc(cluster)}/snapshots`),
  createSnapshot: (cluster: string, name: string, message: string) =>
    post<SnapshotView>(`/clusters/${enc(cluster)}/snapshots`, { name, message }),
  restoreSnapshot: (cluster: string, name: string) =>
    post<ConfigVersionView[]>(`/clusters/${enc(cluster)}/snapshots/${enc(name)}/restore`),
  unitFiles: (cluster: string, unit: number) => get<RenderedFileView[]>(`/clusters/${enc(cluster)}/units/${unit}/files`),
  relations: (cluster: string) => get<RelationView[]>(`/clusters/${enc(cluster)}/relations`),
  relate: (cluster: string, body: Relate) => post<RelationView>(`/clusters/${enc(cluster)}/relations`, body),
  unrelate: (cluster: string, id: number) => request<undefined>('DELETE', `/clusters/${enc(cluster)}/relations/${id}`),
  relationEvents: (cluster: string, id: number) =>
    get<RelationEventView[]>(`/clusters/${enc(cluster)}/relations/${id}/events`),
  /** Every host's recent CPU and memory (heartbeat averages) over the last `window` seconds. */
  clusterMetrics: (cluster: string, window?: number) =>
    get<HostSeriesView[]>(`/clusters/${enc(cluster)}/metrics`, { query: { window } }),
  hostMetrics: (cluster: string, host: string, window?: number) =>
    get<HostSeriesView>(`/clusters/${enc(cluster)}/hosts/${enc(host)}/metrics`, { query: { window } }),
  hostTasks: (cluster: string, host: string, limit = 20) =>
    get<HostTaskView[]>(`/clusters/${enc(cluster)}/hosts/${enc(host)}/tasks`, { query: { limit } }),
  /** The cluster's alerts as they stand: only those not OK when `firing`. */
  alerts: (cluster: string, firing: boolean) =>
    get<AlertView[]>(`/clusters/${enc(cluster)}/alerts`, { query: { firing: String(firing) } }),
  /** Up to `limit` changes of the cluster's alerts after change `after`, oldest first. */
  alertHistory: (cluster: string, after: number | null, limit: number) =>
    get<AlertChangeView[]>(`/clusters/${enc(cluster)}/alerts/history`, { query: { after, limit } }),
  /** The maintenance windows that have not ended. */
  maintenance: (cluster: string) => get<MaintenanceView[]>(`/clusters/${enc(cluster)}/maintenance`),
  startMaintenance: (cluster: string, body: StartMaintenance) => post<MaintenanceView>(`/clusters/${enc(cluster)}/maintenance`, body),
  /** Ends a maintenance window now. */
  endMaintenance: (cluster: string, id: number) => request<undefined>('DELETE', `/clusters/${enc(cluster)}/maintenance/${id}`),
  healing: (cluster: string, service: string) => get<HealingView>(`/clusters/${enc(cluster)}/services/${enc(service)}/healing`),
  setHealing: (cluster: string, service: string, body: HealingChange) =>
    request<HealingView>('PUT', `/clusters/${enc(cluster)}/services/${enc(service)}/healing`, { body }),
  /** What the advisor finds in a cluster, or about one host, service or job. */
  advice: (cluster: string, scope: AdviceScope = {}) =>
    get<Finding[]>(`/clusters/${enc(cluster)}/advice`, { query: { host: scope.host, service: scope.service, job: scope.job } }),
  /** Runs a suggested action's request as it is (method, path under /api/v1, body). */
  runAction: (a: SuggestedAction) =>
    request<unknown>(a.method.toUpperCase(), a.path, a.body === undefined || a.body === null ? {} : { body: a.body }),
  /** What applying a cluster spec would change; changes nothing (any role). */
  planSpec: (cluster: string, body: SpecBody) => post<Plan>(`/clusters/${enc(cluster)}/plan`, body),
  /** Applies a cluster spec (admins): the plan carried out and the jobs it submitted. */
  applySpec: (cluster: string, body: SpecBody) => post<SpecAppliedView>(`/clusters/${enc(cluster)}/apply`, body),
  /** The running cluster as a spec, secret values as references. */
  exportSpec: (cluster: string) => get<SpecExport>(`/clusters/${enc(cluster)}/spec`),
  pipelines: (cluster: string) => getAll<PipelineView>(`/clusters/${enc(cluster)}/pipelines`),
  pipeline: (cluster: string, pipeline: string) => get<PipelineView>(`/clusters/${enc(cluster)}/pipelines/${enc(pipeline)}`),
  /** Creates a pipeline from its definition (admins); a definition with problems is a 422 listing them by line. */
  createPipeline: (cluster: string, body: CreatePipeline) => post<PipelineView>(`/clusters/${enc(cluster)}/pipelines`, body),
  /** Removes a pipeline (admins); a running one is a 409. */
  deletePipeline: (cluster: string, pipeline: string) => request<undefined>('DELETE', `/clusters/${enc(cluster)}/pipelines/${enc(pipeline)}`),
  /** Starts, pauses or resumes a pipeline (operators): the pipeline as it is now; 409 when its state does not allow it. */
  controlPipeline: (cluster: string, pipeline: string, action: 'start' | 'pause' | 'resume') =>
    post<PipelineView>(`/clusters/${enc(cluster)}/pipelines/${enc(pipeline)}/${action}`),
  /** Stops a pipeline (operators): drains it (DRAINING, then STOPPED) or, with `abort`, stops it now (STOPPED). */
  stopPipeline: (cluster: string, pipeline: string, abort: boolean) =>
    post<PipelineView>(`/clusters/${enc(cluster)}/pipelines/${enc(pipeline)}/stop`, undefined, abort ? { query: { abort: 'true' } } : {}),
  /** Scales a non-blocking unit (operators); a blocking or unknown unit, or replicas outside 1 to 64, is a 422. */
  scalePipeline: (cluster: string, pipeline: string, body: ScalePipeline) =>
    post<PipelineView>(`/clusters/${enc(cluster)}/pipelines/${enc(pipeline)}/scale`, body),
  /** A pipeline's graph with each node's batches waiting, leased and processed. */
  pipelineStatus: (cluster: string, pipeline: string) => get<PipelineStatus>(`/clusters/${enc(cluster)}/pipelines/${enc(pipeline)}/status`),
  /** The latest lines of the pipeline's run on this server, oldest first. */
  pipelineLogs: (cluster: string, pipeline: string) => get<PipelineLogs>(`/clusters/${enc(cluster)}/pipelines/${enc(pipeline)}/logs`),
  providers: () => get<ProviderView[]>('/assistant/providers'),
  /** The caller's threads, newest first (a plain list; the first page if the server pages it). */
  threads: async () => {
    const r = await get<ThreadView[] | Page<ThreadView>>('/assistant/threads')
    return Array.isArray(r) ? r : r.items
  },
  createThread: (cluster: string, title?: string) => post<ThreadView>('/assistant/threads', { cluster, ...(title ? { title } : {}) }),
  thread: (id: number) => get<ThreadDetail>(`/assistant/threads/${id}`),
  decideProposal: (id: number, decision: 'confirm' | 'reject') => post<Proposal>(`/assistant/proposals/${id}/${decision}`),
}
