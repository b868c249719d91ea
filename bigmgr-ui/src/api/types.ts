// The REST API's types, written by hand from the OpenAPI document
// (bigmgr-server/tests/it/snapshots/it__openapi__openapi_json.snap). Times are Unix milliseconds.

/** RFC 9457 problem details: every error answer of the API. */
export interface Problem {
  type: string
  title: string
  status: number
  detail: string
  /** The request field the error is about, when the server names one. */
  field?: string
  /**
   * A refused cluster spec's or pipeline definition's problems (`invalid-spec`,
   * `invalid-pipeline`), each with its line.
   */
  problems?: SpecProblem[]
}

/**
 * One problem of a cluster spec or a pipeline definition: its line (1-based; 0 for the text as
 * a whole), the dotted path of its value and what is wrong.
 */
export interface SpecProblem {
  line: number
  path: string
  message: string
}

/** One page of a list: `next` is the cursor for `?after=`, `null` on the last page. */
export interface Page<T> {
  items: T[]
  next: string | null
}

export type Role = 'viewer' | 'operator' | 'admin'

/** `GET /me`: the signed-in user, and every action its role allows (the server's table). */
export interface Me {
  name: string
  role: Role
  may: string[]
}

export interface NewToken {
  token: string
  id: number
  user: string
  name: string
  created_at: number
}

export interface ClusterView {
  id: number
  name: string
  created_at: number
}

export type HostState = 'WAITING' | 'ONLINE' | 'LOST'
export type UnitState = 'NEW' | 'INSTALLED' | 'STARTED' | 'STOPPED' | 'FAILED' | 'REMOVED'

export interface HostFacts {
  os: string
  os_version: string
  kernel: string
  arch: string
  cores: number
  memory_bytes: number
  disk_total_bytes: number
  disk_free_bytes: number
  agent_root?: string
}

export interface HostMetrics {
  at: number
  cpu_percent: number
  memory_used_bytes: number
  memory_total_bytes: number
  disk_total_bytes: number
  disk_free_bytes: number
  load: number[]
}

/** A unit's latest status check. */
export interface UnitHealth {
  healthy: boolean
  message: string
  checked_at: number
}

export interface HostUnitView {
  id: number
  service: string
  component: string
  state: UnitState
  health?: UnitHealth | null
}

export interface HostView {
  id: number
  name: string
  cluster: string
  address: string
  reported_address?: string | null
  state: HostState
  last_heartbeat?: number | null
  facts?: HostFacts | null
  metrics?: HostMetrics | null
  units: HostUnitView[]
}

export interface UnitStatusView {
  id: number
  service: string
  component: string
  host: string
  state: UnitState
  applied_version?: number | null
  desired_version: number
  stale: boolean
  stale_reason?: string | null
}

export interface ServiceUnitView {
  id: number
  component: string
  host: string
  state: UnitState
  health?: UnitHealth | null
  applied_version?: number | null
  stale: boolean
  stale_reason?: string | null
}

/** A service instance of a cluster. */
export interface ServiceView {
  id: number
  name: string
  stack: string
  stack_version: string
  service: string
  created_at: number
  config_version: number
  configs: Record<string, unknown>
  host_overrides: Record<string, unknown>
  units: ServiceUnitView[]
}

/** One machine of a [`BootstrapHosts`]: it becomes a host of the cluster. */
export interface BootstrapHost {
  /** Its host name in the cluster (the agent joins under it). */
  name: string
  /** The address to log in at, which also becomes the host's address: an IP address or a DNS name. */
  address: string
  /** Its SSH port, if not the request's. */
  ssh_port?: number | null
  /**
   * Its SSH host key's fingerprint as `ssh-keygen -lf` prints it (`SHA256:` and 43 base64
   * characters): only that key is accepted. Left out, the key recorded at the host's last
   * bootstrap is required, or (a host never bootstrapped) the key seen is trusted and recorded.
   */
  host_key?: string | null
}

/**
 * The body of `POST /clusters/{cluster}/hosts/bootstrap` (admins, `bootstrap-hosts`): machines
 * the server logs in to over SSH to install and start the agent, which then joins the cluster.
 * Exactly one of `ssh_key` and `ssh_password`; neither is stored or returned. Answered 202
 * with the `bootstrap` job, one task per host.
 */
export interface BootstrapHosts {
  /** 1–1000 machines. */
  hosts: BootstrapHost[]
  /** The user to log in as (default `root`). */
  ssh_user?: string
  /** The SSH port of every machine that does not give its own (default 22). */
  ssh_port?: number | null
  /** A private key in OpenSSH format. */
  ssh_key?: string | null
  /** The private key's passphrase, if it has one. */
  ssh_key_passphrase?: string | null
  /** A password, instead of a key. */
  ssh_password?: string | null
  /** Replace an agent already running on a machine (else such a machine is left alone). */
  upgrade?: boolean
  /** The directory on each machine for the agent (default `/opt/bigmgr-agent`). */
  prefix?: string | null
  /** The URL the agents reach the server at (default: the one the request reached it at). */
  server?: string | null
}

/** The body of `POST /clusters/{cluster}/jobs`. */
export interface SubmitJob {
  command: string
  target: Target
  options?: JobOptions
}

export interface StackPropertyView {
  name: string
  type: string
  default?: unknown
  description: string
  required: boolean
  secret: boolean
}

export interface StackConfigView {
  name: string
  path: string
  properties: StackPropertyView[]
}

export interface StackComponentView {
  name: string
  category: 'server' | 'client'
  /** e.g. `1`, `1+`, `0+`, `1-3`. */
  cardinality: string
  commands: string[]
}

export interface StackServiceView {
  name: string
  version: string
  description: string
  components: StackComponentView[]
  configs: StackConfigView[]
}

/** A stack the server loaded; `error` says why one failed to load. */
export interface StackView {
  name: string
  version: string
  services: StackServiceView[]
  error?: string | null
}

export interface UserView {
  id: number
  name: string
  role: Role
  has_password: boolean
  created_at: number
}

export interface CreateUser {
  name: string
  role: Role
  password?: string | null
}

export interface TokenView {
  id: number
  user: string
  name: string
  created_at: number
  last_used_at?: number | null
}

export interface AuditEventView {
  id: number
  at: number
  actor: string
  action: string
  target: string
  outcome: 'ok' | 'refused' | 'failed'
  detail: string
}

export interface JoinToken {
  token: string
  /** The CA agents pin (`sha256:…`); null when the server serves plain HTTP. */
  ca_fingerprint?: string | null
  /** The whole agent command, with placeholders for the host. */
  command?: string | null
}

export type JobState =
  | 'QUEUED'
  | 'RUNNING'
  | 'PAUSED'
  | 'CANCELING'
  | 'SUCCEEDED'
  | 'FAILED'
  | 'CANCELED'
export type StageState = 'PENDING' | 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'CANCELED'
export type TaskState =
  | 'PENDING'
  | 'QUEUED'
  | 'RUNNING'
  | 'SUCCEEDED'
  | 'FAILED'
  | 'TIMED_OUT'
  | 'CANCELED'

/** What a job acts on. */
export type Target =
  | 'cluster'
  | { service: string }
  | { component: { service: string; component: string } }
  | { hosts: string[] }
  | { units: number[] }

export interface JobOptions {
  parallelism?: number | null
  batch_size?: number | null
  failure_tolerance?: number
  pipelined?: boolean
}

export interface JobView {
  id: number
  cluster: string
  command: string
  target: Target
  options: JobOptions
  state: JobState
  created_at: number
  started_at?: number | null
  finished_at?: number | null
}

export interface TaskView {
  id: number
  host: string
  state: TaskState
  attempt: number
  exit_code?: number | null
  message?: string | null
  started_at?: number | null
  finished_at?: number | null
}

export interface StageView {
  id: number
  name: string
  component: string
  command: string
  state: StageState
  /** The ids of the stages this one waits for. */
  after: number[]
  tasks: TaskView[]
}

export interface JobDetailView extends JobView {
  /** Its stages in a topological order. */
  stages: StageView[]
}

export type LogStream = 'stdout' | 'stderr'

export interface LogLineView {
  attempt: number
  seq: number
  stream: LogStream
  at: number
  line: string
}

export interface TaskLog {
  lines: LogLineView[]
}

/** Data of the `job` and `end` events. */
export interface JobEvent {
  id: number
  state: JobState
}

/** Data of the `task` event. */
export interface TaskEvent {
  id: number
  state: TaskState
}

/** Data of the `log` event. */
export interface LogEvent extends LogLineView {
  task: number
}

export const FINAL_JOB_STATES: readonly JobState[] = ['SUCCEEDED', 'FAILED', 'CANCELED']

/** Config values of a service layer: config type → property → value. */
export type ServiceConfigs = Record<string, Record<string, unknown>>
/** Host overrides: host name → config type → property → value. */
export type HostOverrides = Record<string, ServiceConfigs>

/** The body of `POST /clusters/{cluster}/services` (and of its dry run). */
export interface AddService {
  name: string
  stack: string
  version?: string | null
  service: string
  /** Host names per component; a component left out gets no units. */
  placement: Record<string, string[]>
  configs?: ServiceConfigs
  host_overrides?: HostOverrides
}

/** A unit a service would get. */
export interface PlannedUnitView {
  component: string
  host: string
}

/**
 * `POST /clusters/{cluster}/services?dry_run=true`: what adding the service would create,
 * after every check the real call makes (placement, cardinality, config types, rendering);
 * nothing is written.
 */
export interface ServiceCheckView {
  name: string
  stack: string
  stack_version: string
  service: string
  units: PlannedUnitView[]
}

/** One config version of a service (secrets shown as `********`). */
export interface ConfigVersionView {
  service: string
  version: number
  author: string
  created_at: number
  message: string
  configs: ServiceConfigs
  host_overrides: HostOverrides
}

/** One changed property between two versions; `host` set for a host override. */
export interface ConfigDiffView {
  config_type: string
  host?: string | null
  property: string
  from?: unknown
  to?: unknown
}

/** The body of `PATCH …/configs`: merge patches (a `null` value removes the property). */
export interface ConfigChange {
  configs?: Record<string, Record<string, unknown>>
  hosts?: Record<string, Record<string, Record<string, unknown>>>
  message?: string
}

export interface SnapshotView {
  name: string
  author: string
  created_at: number
  message: string
  /** Service instance name → config version. */
  versions: Record<string, number>
}

export interface RelationView {
  id: number
  requirer: string
  requirer_endpoint: string
  provider: string
  provider_endpoint: string
  interface: string
  auto_reconfigure: boolean
  created_at: number
}

/** The body of `POST /clusters/{cluster}/relations`. */
export interface Relate {
  /** `service` or `service:endpoint`. */
  requirer: string
  provider: string
  auto_reconfigure?: boolean
}

export interface RelationEventView {
  at: number
  /** `joined`, `changed` or `broken`. */
  kind: string
  service: string
  detail: string
  job?: number | null
}

/** `GET /clusters/{cluster}/units/{unit}/files`: a unit's config files as the server renders them now, secrets masked. */
export interface RenderedFileView {
  path: string
  content: string
}

/** A host's recent heartbeat averages (`GET …/hosts/{host}/metrics` and `GET …/metrics`). */
export interface HostSeriesView {
  host: string
  /** Sample times, oldest first. */
  at: number[]
  /** CPU use in percent, one per sample. */
  cpu_percent: number[]
  /** Memory used in percent of the total, one per sample. */
  memory_percent: number[]
}

/** A task that ran (or runs) on a host, newest first (`GET …/hosts/{host}/tasks`). */
export interface HostTaskView {
  id: number
  job: number
  command: string
  /** What the task ran: its stage's command (`install`, `start` …). */
  stage_command: string
  service: string
  component: string
  state: TaskState
  attempt: number
  exit_code?: number | null
  started_at?: number | null
  finished_at?: number | null
}

export type AlertState = 'OK' | 'WARNING' | 'CRITICAL' | 'UNKNOWN'

/** An alert as it stands (`GET /clusters/{cluster}/alerts`); firing means not OK. */
export interface AlertView {
  id: number
  /** The definition (`host_lost`, `unit_down`, `unit_stale`, `job_failed`, …). */
  definition: string
  state: AlertState
  /** What the last check said. */
  text: string
  host?: string | null
  /** The service instance it is about, if any. */
  service?: string | null
  /** The unit it is about (`component@host`), if any. */
  unit?: string | null
  /** Since when it is in this state. */
  since: number
  checked_at: number
  /** Why it is silenced (e.g. its host is in maintenance); absent from older servers. */
  silenced?: string | null
}

/** A change of an alert's state (`GET /clusters/{cluster}/alerts/history`, oldest first). */
export interface AlertChangeView {
  /** The history's cursor (`?after=`). */
  id: number
  alert: number
  definition: string
  from: AlertState
  to: AlertState
  text: string
  host?: string | null
  service?: string | null
  unit?: string | null
  at: number
}

/** A maintenance window that has not ended: the alerts of its host or service are silenced. */
export interface MaintenanceView {
  id: number
  host?: string | null
  service?: string | null
  until: number
  reason: string
  /** Who started it. */
  by: string
  created_at: number
}

/** The body of `POST /clusters/{cluster}/maintenance`: one of host/service, one of for/until. */
export interface StartMaintenance {
  host?: string
  service?: string
  /** How long, e.g. `2h`, `30m`. */
  for?: string
  until?: number
  reason?: string
}

/** A service's self-healing policy (`GET /clusters/{cluster}/services/{service}/healing`). */
export interface HealingView {
  /** Whether a down unit is restarted. */
  restart: boolean
  /** How long a unit may be down before it is restarted, e.g. `30s`. */
  grace: string
  max_per_hour: number
  attempts_last_hour: number
  /** The limit was reached: no more restarts for now. */
  gave_up: boolean
}

/** The body of `PUT …/healing`. */
export interface HealingChange {
  restart: boolean
  grace?: string
  max_per_hour?: number
}

/** How much an advisor's finding matters (bigmgr-core/src/advisor.rs `Severity`). */
export type Severity = 'CRITICAL' | 'WARNING' | 'INFO'

/** A request the operator may run after confirming (advisor actions, assistant proposals). */
export interface SuggestedAction {
  title: string
  method: string
  /** The path under `/api/v1`. */
  path: string
  body?: unknown
}

/** One thing the advisor found (`GET /clusters/{cluster}/advice`), most severe first. */
export interface Finding {
  /** `task.port_in_use`, `host.lost`, `zookeeper.quorum`, … */
  rule: string
  severity: Severity
  title: string
  /** Names, ids, the log lines that matter. */
  evidence: string[]
  hint: string
  host?: string | null
  service?: string | null
  job?: number | null
  task?: number | null
  actions: SuggestedAction[]
}

/** What `GET /clusters/{cluster}/advice` may be narrowed to. */
export interface AdviceScope {
  host?: string
  service?: string
  job?: number
}

/** A chat model endpoint (`GET /assistant/providers`); never its key. */
export interface ProviderView {
  name: string
  base_url: string
  model: string
  default: boolean
  has_key: boolean
  timeout_ms?: number | null
  updated_at?: number | null
}

/** A conversation of the caller's (`POST /assistant/threads`). */
export interface ThreadView {
  id: number
  cluster: string
  user: string
  title: string
  created_at: number
}

export interface ToolCall {
  id: string
  name: string
  /** The arguments as the model wrote them (a JSON text, or already an object). */
  arguments: unknown
}

export interface ChatMessage {
  id: number
  role: 'user' | 'assistant' | 'tool'
  content: string
  tool_calls?: ToolCall[] | null
  tool_call_id?: string | null
  created_at: number
}

export type ProposalState = 'pending' | 'confirmed' | 'rejected' | 'failed'

/** A mutating tool call the model made: nothing ran until the user confirms it. */
export interface Proposal {
  id: number
  thread: number
  title: string
  action: SuggestedAction
  state: ProposalState
  /** What its request answered once confirmed. */
  result?: { status: number; body: unknown } | null
  created_at: number
  decided_at?: number | null
}

/** `GET /assistant/threads/{thread}`. */
export interface ThreadDetail {
  thread: ThreadView
  messages: ChatMessage[]
  proposals: Proposal[]
}

// Cluster specs (docs/spec.md).

/**
 * The body of `POST /clusters/{cluster}/plan` and `…/apply`: the spec's text, whether to remove
 * what it does not name, and the values of its secret references (`env:NAME`, `file:PATH`).
 */
export interface SpecBody {
  spec: string
  prune: boolean
  secrets?: Record<string, string>
}

export interface PlannedHost {
  name: string
  address: string
}

export interface PlannedUnit {
  service: string
  component: string
  host: string
  /** Why core chose this host, for a placement by count. */
  why?: string | null
}

/** A property a plan changes; `from`/`to` null: not set (secrets read as `********`). */
export interface PlannedConfig {
  service: string
  config_type: string
  host: string | null
  property: string
  from: unknown
  to: unknown
}

export interface PlannedRelation {
  requirer: string
  requirer_endpoint: string
  provider: string
  provider_endpoint: string
}

/** A service policy a plan changes (`healing`): its settings now and after the apply. */
export interface PlannedPolicy {
  service: string
  policy: string
  from: unknown
  to: unknown
}

/** A job a plan would run: `hosts` empty means every unit of the service. */
export interface PlannedJob {
  command: string
  service: string
  hosts: string[]
  why: string
}

/** What applying a spec would change (`POST …/plan`). */
export interface Plan {
  create_cluster: boolean
  hosts_to_add: PlannedHost[]
  services_to_add: string[]
  services_to_remove: string[]
  units_to_add: PlannedUnit[]
  units_to_remove: PlannedUnit[]
  configs: PlannedConfig[]
  relations_to_add: PlannedRelation[]
  relations_to_remove: PlannedRelation[]
  /** Policies to change (a server before spec policies sends none). */
  policies?: PlannedPolicy[]
  jobs: PlannedJob[]
  /** What the apply cannot change: it refuses while there is any. */
  problems: string[]
  /** In the cluster, not in the spec, and staying (without prune). */
  kept: string[]
}

/** `POST …/apply` (202): the plan carried out and the jobs submitted. */
export interface SpecAppliedView {
  plan: Plan
  jobs: JobView[]
}

/** `GET …/spec`: the running cluster as a spec; secret values are references listed here. */
export interface SpecExport {
  spec: string
  references: string[]
}

// Pipelines (docs/pipelines.md).

/** Where a pipeline is in its life. */
export type PipelineState = 'CREATED' | 'RUNNING' | 'PAUSED' | 'DRAINING' | 'STOPPED' | 'FAILED' | 'FINISHED'

/** A pipeline of a cluster (`GET /clusters/{cluster}/pipelines[/{pipeline}]`). */
export interface PipelineView {
  id: number
  /** Unique among the cluster's pipelines (the definition's `name`). */
  name: string
  /** Who created it. */
  author: string
  created_at: number
  state: PipelineState
  /** Its definition as written (TOML). */
  definition: string
  /** What its run last said: why it failed, or how it stopped (an older server sends none). */
  message?: string | null
  /** The replicas its units were scaled to, over what the definition says (scaled units only). */
  replicas?: Record<string, number>
}

/** The body of `POST /clusters/{cluster}/pipelines` (admins): the definition's TOML text. */
export interface CreatePipeline {
  definition: string
}

/** The body of `POST …/pipelines/{pipeline}/scale` (operators): a non-blocking unit's replicas, 1 to 64. */
export interface ScalePipeline {
  unit: string
  replicas: number
}

/** What a node of a pipeline's graph is. */
export type PipelineNodeKind = 'source' | 'unit' | 'channel' | 'sink'

/** One node of a pipeline and its batches (`GET …/status`). */
export interface PipelineNode {
  name: string
  kind: PipelineNodeKind
  /** A unit's replicas (as scaled). */
  replicas?: number | null
  /** A channel's limit of batches waiting (backpressure). */
  limit?: number | null
  /** Batches waiting (for a unit: in its input channels): its backlog. */
  waiting: number
  /** Batches being processed (leased). */
  leased: number
  processed: number
  /** Batches processed in the last minute: its throughput. */
  processed_last_minute: number
  /** A source's batches recorded. */
  recorded: number
  /** A channel takes more (false: not-ready, upstream waits); other nodes are always ready. */
  ready: boolean
}

/** `GET /clusters/{cluster}/pipelines/{pipeline}/status`: its graph and each node's batches. */
export interface PipelineStatus {
  pipeline: PipelineView
  /** Sources, units, channels (named ones and those inserted between two nodes, `<from>-><to>`) and sinks. */
  nodes: PipelineNode[]
  /** `[from, to]`. */
  edges: [string, string][]
  /** This server runs it now. */
  running_here: boolean
}

/** A line of a pipeline run's log. */
export interface PipelineLogLine {
  at: number
  line: string
}

/** `GET /clusters/{cluster}/pipelines/{pipeline}/logs`: the run's latest lines, oldest first. */
export interface PipelineLogs {
  lines: PipelineLogLine[]
}
