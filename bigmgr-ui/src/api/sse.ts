// A Server-Sent Events reader over fetch: EventSource cannot send the Authorization header,
// so the stream is read with fetch and parsed here (the WHATWG event-stream format: `event:`,
// `data:` over several lines, `id:`, `retry:`, `:` comments, a blank line ends an event).
import { ApiError, send } from './client'

export interface SseEvent {
  event: string
  data: string
  id?: string
}

/** Incremental parser: feed it text chunks cut anywhere; it calls `onEvent` per event. */
export class SseParser {
  private buf = ''
  private event = ''
  private data: string[] = []
  private id: string | undefined
  /** The last `retry:` the server asked for, in ms. */
  retry: number | undefined
  private readonly onEvent: (e: SseEvent) => void

  constructor(onEvent: (e: SseEvent) => void) {
    this.onEvent = onEvent
  }

  push(chunk: string): void {
    this.buf += chunk
    for (;;) {
      const m = /\r\n|\r|\n/.exec(this.buf)
      if (!m) return
      // A lone \r at the very end may be the first half of \r\n: wait for more.
      if (m[0] === '\r' && m.index === this.buf.length - 1) return
      const line = this.buf.slice(0, m.index)
      this.buf = this.buf.slice(m.index + m[0].length)
      this.line(line)
    }
  }

  /** The stream ended: an unfinished event is dropped (as the spec says). */
  end(): void {
    this.buf = ''
    this.event = ''
    this.data = []
  }

  private line(line: string): void {
    if (line === '') {
      if (this.data.length > 0) {
        const e: SseEvent = { event: this.event || 'message', data: this.data.join('\n') }
        if (this.id !== undefined) e.id = this.id
        this.onEvent(e)
      }
      this.event = ''
      this.data = []
      return
    }
    if (line.startsWith(':')) return
    const colon = line.indexOf(':')
    const field = colon < 0 ? line : line.slice(0, colon)
    let value = colon < 0 ? '' : line.slice(colon + 1)
    if (value.startsWith(' ')) value = value.slice(1)
    switch (field) {
      case 'event':
        this.event = value
        break
      case 'data':
        this.data.push(value)
        break
      case 'id':
        if (!value.includes('\0')) this.id = value
        break
      case 'retry':
        if (/^\d+$/.test(value)) this.retry = Number(value)
        break
      default:
        break
    }
  }
}

/** Reads a byte stream to its end through an SseParser. */
export async function readSse(
  body: ReadableStream<Uint8Array>,
  onEvent: (e: SseEvent) => void,
): Promise<void> {
  const parser = new SseParser(onEvent)
  const reader = body.getReader()
  const decoder = new TextDecoder()
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      parser.push(decoder.decode(value, { stream: true }))
    }
    parser.push(decoder.decode())
  } finally {
    parser.end()
    reader.releaseLock()
  }
}

export interface FollowOptions {
  /** Called before each (re)connection: re-read the state so nothing between is lost. */
  onConnect?: (attempt: number) => Promise<void> | void
  onEvent: (e: SseEvent) => void
  /** Called after a lost connection, with the delay before the next try. */
  onRetry?: (delayMs: number, error: unknown) => void
  /** True when the stream ended normally and should not be reopened (e.g. after `end`). */
  finished: () => boolean
  signal: AbortSignal
  /** Backoff: base delay and cap, in ms. */
  baseDelay?: number
  maxDelay?: number
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>
}

function defaultSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms)
    signal.addEventListener('abort', () => {
      clearTimeout(t)
      resolve()
    })
  })
}

/** The delay before reconnection `attempt` (1-based): doubling from `base`, capped. */
export function backoff(attempt: number, base = 500, max = 15000): number {
  return Math.min(max, base * 2 ** Math.max(0, attempt - 1))
}

/**
 * Follows `path` (an SSE endpoint under /api/v1) until `finished()` or `signal` aborts,
 * reconnecting with backoff after a network loss or a dropped stream. 4xx answers other than
 * 408/429 are not retried: they are thrown (a 401 has already gone to the login hook).
 */
export async function followSse(path: string, o: FollowOptions): Promise<void> {
  const sleep = o.sleep ?? defaultSleep
  const aborted = (): boolean => o.signal.aborted
  let failures = 0
  let attempt = 0
  while (!aborted()) {
    try {
      await o.onConnect?.(attempt)
      attempt++
      if (o.finished()) return
      const res = await send('GET', path, { signal: o.signal, accept: 'text/event-stream' })
      if (!res.body) throw new Error('response has no body')
      await readSse(res.body, (e) => {
        failures = 0
        o.onEvent(e)
      })
      if (o.finished() || aborted()) return
      throw new Error('event stream closed')
    } catch (e) {
      if (aborted()) return
      if (e instanceof ApiError && e.status >= 400 && e.status < 500 && e.status !== 408 && e.status !== 429) {
        throw e
      }
      failures++
      const delay = backoff(failures, o.baseDelay, o.maxDelay)
      o.onRetry?.(delay, e)
      await sleep(delay, o.signal)
    }
  }
}
