// Shared page helpers: a poller that refreshes a list on an interval while the page is shown (and
// at once when the cluster's event stream says it changed; one stream per cluster is shared by
// every list on the page), and a runner for a user action that shows its API error.
import { computed, onBeforeUnmount, onMounted, ref, watch, type ComputedRef, type Ref, type WatchSource } from 'vue'
import { useRoute } from 'vue-router'
import { ApiError } from './api/client'
import { followSse } from './api/sse'

export const REFRESH_MS = 5000

/** A list's interval when the cluster's event stream refreshes it: a safety net only. */
export const LIVE_REFRESH_MS = 30000

/** Which of a cluster's lists a page shows: it reloads when the cluster's events name one. */
export interface Live {
  cluster: () => string
  topics: readonly string[]
}

/**
 * Follows `GET /clusters/{cluster}/events` until `signal` aborts, calling `changed` with the
 * topics an event names, and with `null` after each reconnection (what changed meanwhile is
 * unknown). A refused stream (an unknown cluster) ends quietly: the page's own load shows that
 * error.
 */
async function followTopics(cluster: string, changed: (topics: readonly string[] | null) => void, signal: AbortSignal): Promise<void> {
  try {
    await followSse(`/clusters/${encodeURIComponent(cluster)}/events`, {
      signal,
      finished: () => false,
      onConnect: (attempt) => {
        if (attempt > 0) changed(null)
      },
      onEvent: (e) => {
        if (e.event !== 'changed') return
        changed((JSON.parse(e.data) as { topics?: string[] }).topics ?? [])
      },
    })
  } catch (e) {
    if (!(e instanceof ApiError)) throw e
  }
}

/**
 * Follows `GET /clusters/{cluster}/events` until `signal` aborts, calling `changed` when an
 * event names one of `topics`, and after each reconnection (what changed meanwhile is unknown).
 * A refused stream (an unknown cluster) ends quietly: the page's own load shows that error.
 */
export function followCluster(live: Live, changed: () => void, signal: AbortSignal): Promise<void> {
  return followTopics(
    live.cluster(),
    (topics) => {
      if (topics === null || topics.some((t) => live.topics.includes(t))) changed()
    },
    signal,
  )
}

interface Listener {
  topics: readonly string[]
  changed: () => void
}

/** A cluster's one event stream and whoever listens to it. */
interface Shared {
  stop: AbortController
  listeners: Set<Listener>
}

const shared = new Map<string, Shared>()

/**
 * Calls `changed` when the cluster's event stream names one of `live.topics` (and after each
 * reconnection) until the returned function is called. Every list of a page (the page's own
 * and its panels': alerts, maintenance…) listens to one stream per cluster, opened by the first
 * and closed by the last to leave: a browser allows six HTTP/1.1 connections per origin.
 */
export function listenCluster(live: Live, changed: () => void): () => void {
  const cluster = live.cluster()
  let s = shared.get(cluster)
  if (!s) {
    const created: Shared = { stop: new AbortController(), listeners: new Set() }
    shared.set(cluster, created)
    const done = followTopics(
      cluster,
      (topics) => {
        for (const l of [...created.listeners]) {
          if (topics === null || topics.some((t) => l.topics.includes(t))) l.changed()
        }
      },
      created.stop.signal,
    )
    // A refused stream has ended: whoever listens next tries again.
    void done.finally(() => {
      if (shared.get(cluster) === created) shared.delete(cluster)
    })
    s = created
  }
  const hub = s
  const mine: Listener = { topics: live.topics, changed }
  hub.listeners.add(mine)
  return () => {
    if (!hub.listeners.delete(mine) || hub.listeners.size > 0) return
    hub.stop.abort()
    if (shared.get(cluster) === hub) shared.delete(cluster)
  }
}

/**
 * Loads with `fn` now, again every `every` ms and whenever `deps` change; keeps the last good
 * data while a later load fails (the error is shown beside it, never swallowed). With `live`,
 * it also reloads as soon as the cluster's event stream names one of its topics, and the
 * interval becomes a slow safety net.
 */
export function usePoll<T>(
  fn: () => Promise<T>,
  opts: { every?: number; deps?: WatchSource[]; live?: Live } = {},
): { data: Ref<T | null>; error: Ref<ApiError | null>; loading: Ref<boolean>; at: Ref<number | null>; reload: () => Promise<void> } {
  const data = ref<T | null>(null) as Ref<T | null>
  const error = ref<ApiError | null>(null)
  const loading = ref(false)
  const at = ref<number | null>(null)
  let timer: ReturnType<typeof setInterval> | undefined
  let seq = 0

  async function reload(): Promise<void> {
    const mine = ++seq
    loading.value = true
    try {
      const v = await fn()
      if (mine !== seq) return
      data.value = v
      error.value = null
      at.value = Date.now()
    } catch (e) {
      if (mine !== seq) return
      if (e instanceof ApiError) error.value = e
      else throw e
    } finally {
      if (mine === seq) loading.value = false
    }
  }

  let unlisten: (() => void) | undefined
  function follow(): void {
    unlisten?.()
    unlisten = opts.live ? listenCluster(opts.live, () => void reload()) : undefined
  }

  onMounted(() => {
    void reload()
    follow()
    timer = setInterval(() => {
      if (typeof document === 'undefined' || !document.hidden) void reload()
    }, opts.every ?? (opts.live ? LIVE_REFRESH_MS : REFRESH_MS))
  })
  onBeforeUnmount(() => {
    if (timer !== undefined) clearInterval(timer)
    unlisten?.()
    unlisten = undefined
    seq++
  })
  if (opts.deps && opts.deps.length > 0) {
    watch(opts.deps, () => {
      data.value = null
      void reload()
      follow()
    })
  }
  return { data, error, loading, at, reload }
}

/**
 * Runs a user's action `fn`: clears `error` first and keeps an ApiError from it there (the page
 * shows it; anything else is a bug and is rethrown); `busy(true)`/`busy(false)` bracket the run so
 * the page can show a spinner. Resolves to whether the action succeeded.
 */
export async function attempt(error: Ref<ApiError | null>, fn: () => Promise<unknown>, busy?: (on: boolean) => void): Promise<boolean> {
  busy?.(true)
  error.value = null
  try {
    await fn()
    return true
  } catch (e) {
    if (e instanceof ApiError) error.value = e
    else throw e
    return false
  } finally {
    busy?.(false)
  }
}

/**
 * A user action's state: `busy` while it runs and the `error` it ended with; `run(fn)` is
 * [`attempt`] with both (resolves to whether it succeeded).
 */
export function useAction(): { busy: Ref<boolean>; error: Ref<ApiError | null>; run: (fn: () => Promise<unknown>) => Promise<boolean> } {
  const busy = ref(false)
  const error = ref<ApiError | null>(null)
  return { busy, error, run: (fn) => attempt(error, fn, (on) => (busy.value = on)) }
}

/** The current route's path parameter `name` (a cluster, a host…), following navigation. */
export function useRouteParam(name: string): ComputedRef<string> {
  const route = useRoute()
  return computed(() => String(route.params[name]))
}
