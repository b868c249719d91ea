// A job followed live: the job as last read, updated by its event stream; re-read on every
// (re)connection so nothing that happened while disconnected is lost, and log lines are keyed
// by (attempt, seq) so a line read twice is kept once.
import { reactive } from 'vue'
import { ApiError, api } from '../api/client'
import { followSse, type SseEvent } from '../api/sse'
import {
  FINAL_JOB_STATES,
  type JobDetailView,
  type JobEvent,
  type LogEvent,
  type LogLineView,
  type Problem,
  type TaskEvent,
  type TaskView,
} from '../api/types'

export type Connection = 'connecting' | 'live' | 'retrying' | 'ended' | 'failed'

export interface JobLiveState {
  job: JobDetailView | null
  connection: Connection
  error: Problem | null
  /** Log lines per task id, only for tasks whose log is being watched. */
  logs: Record<number, LogLineView[]>
}

export interface JobLiveDeps {
  load: (id: number, signal?: AbortSignal) => Promise<JobDetailView>
  loadLog: (job: number, task: number) => Promise<LogLineView[]>
  follow: typeof followSse
  /** Throttle of job re-reads after task events (stage states are the server's). */
  refreshDelay: number
}

const defaultDeps: JobLiveDeps = {
  load: (id, signal) => api.job(id, signal),
  loadLog: async (job, task) => (await api.taskLog(job, task)).lines,
  follow: followSse,
  refreshDelay: 1000,
}

export class JobLive {
  readonly state: JobLiveState
  private readonly id: number
  private readonly deps: JobLiveDeps
  private abort = new AbortController()
  private tasks = new Map<number, TaskView>()
  private watched = new Set<number>()
  private refreshTimer: ReturnType<typeof setTimeout> | undefined

  constructor(id: number, deps: Partial<JobLiveDeps> = {}) {
    this.id = id
    this.deps = { ...defaultDeps, ...deps }
    this.state = reactive<JobLiveState>({ job: null, connection: 'connecting', error: null, logs: {} })
  }

  private setJob(job: JobDetailView): void {
    this.state.job = job
    this.tasks.clear()
    // Index the reactive copies so event updates re-render.
    for (const s of this.state.job.stages) for (const t of s.tasks) this.tasks.set(t.id, t)
  }

  private final(): boolean {
    const s = this.state.job?.state
    return s !== undefined && FINAL_JOB_STATES.includes(s)
  }

  /** Reads the job and follows its events until it ends or `stop()`. */
  async start(): Promise<void> {
    const signal = this.abort.signal
    try {
      await this.deps.follow(`/jobs/${this.id}/events`, {
        signal,
        onConnect: async () => {
          this.setJob(await this.deps.load(this.id, signal))
          // A log that cannot be read again is shown as an error; it does not stop the stream.
          await Promise.all(
            [...this.watched].map((t) =>
              this.reloadLog(t).catch((e: unknown) => {
                if (e instanceof ApiError) this.state.error = e.problem
                else throw e
              }),
            ),
          )
          this.state.connection = this.final() ? 'ended' : 'live'
        },
        onEvent: (e) => {
          this.apply(e)
        },
        onRetry: () => {
          this.state.connection = 'retrying'
        },
        finished: () => this.final(),
      })
      if (!signal.aborted) this.state.connection = 'ended'
    } catch (e) {
      if (signal.aborted) return
      this.state.connection = 'failed'
      this.state.error =
        e instanceof ApiError
          ? e.problem
          : { type: 'about:blank', title: 'Error', status: 0, detail: String(e) }
    }
  }

  stop(): void {
    this.abort.abort()
    this.abort = new AbortController()
    if (this.refreshTimer !== undefined) clearTimeout(this.refreshTimer)
  }

  /** Applies one event of the stream. */
  apply(e: SseEvent): void {
    const job = this.state.job
    if (!job) return
    switch (e.event) {
      case 'job':
      case 'end': {
        const d = JSON.parse(e.data) as JobEvent
        job.state = d.state
        this.scheduleRefresh(e.event === 'end' ? 0 : this.refreshDelay())
        if (e.event === 'end') this.state.connection = 'ended'
        break
      }
      case 'task': {
        const d = JSON.parse(e.data) as TaskEvent
        const t = this.tasks.get(d.id)
        if (t) t.state = d.state
        this.scheduleRefresh(this.refreshDelay())
        break
      }
      case 'log': {
        const d = JSON.parse(e.data) as LogEvent
        if (this.watched.has(d.task)) {
          const { task, ...line } = d
          this.addLines(task, [line])
        }
        break
      }
      case 'error': {
        this.state.error = JSON.parse(e.data) as Problem
        break
      }
      default:
        break
    }
  }

  /** How long to wait before re-reading the job after a task event: a job of 10 000 tasks is
   * re-read at most every 10 s (task states arrive live in between; stage states lag). */
  private refreshDelay(): number {
    return Math.min(10000, Math.max(this.deps.refreshDelay, this.tasks.size))
  }

  private scheduleRefresh(delay: number): void {
    if (this.refreshTimer !== undefined) {
      if (delay > 0) return
      clearTimeout(this.refreshTimer)
    }
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = undefined
      this.deps
        .load(this.id)
        .then((j) => {
          this.setJob(j)
        })
        .catch((err: unknown) => {
          if (err instanceof ApiError) this.state.error = err.problem
        })
    }, delay)
  }

  private addLines(task: number, lines: LogLineView[]): void {
    const have = (this.state.logs[task] ??= [])
    const seen = new Set(have.map((l) => `${l.attempt}:${l.seq}`))
    let sorted = false
    for (const l of lines) {
      const k = `${l.attempt}:${l.seq}`
      if (seen.has(k)) continue
      seen.add(k)
      const last = have[have.length - 1]
      if (last && (last.attempt > l.attempt || (last.attempt === l.attempt && last.seq > l.seq))) sorted = true
      have.push(l)
    }
    if (sorted) have.sort((a, b) => a.attempt - b.attempt || a.seq - b.seq)
  }

  private async reloadLog(task: number): Promise<void> {
    this.addLines(task, await this.deps.loadLog(this.id, task))
  }

  /** Starts keeping the log of `task`: reads what is there, then appends live lines. */
  async watchLog(task: number): Promise<void> {
    this.watched.add(task)
    await this.reloadLog(task)
  }

  unwatchLog(task: number): void {
    this.watched.delete(task)
    // eslint-disable-next-line @typescript-eslint/no-dynamic-delete
    delete this.state.logs[task]
  }
}
