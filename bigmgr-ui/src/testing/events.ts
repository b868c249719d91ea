// Test helper: a cluster's event stream as a fake server answers it. `respond(signal)` is one
// open `GET …/events` (it ends when the request is aborted, as a real fetch's body does);
// `changed(...topics)` sends a `changed` event to every open one; `open()` counts them.
export interface EventStream {
  respond: (signal: AbortSignal | null) => Response
  changed: (...topics: string[]) => void
  open: () => number
}

export function eventStream(): EventStream {
  const streams = new Set<ReadableStreamDefaultController<Uint8Array>>()
  const enc = new TextEncoder()
  return {
    respond(signal) {
      const body = new ReadableStream<Uint8Array>({
        start(c) {
          streams.add(c)
          signal?.addEventListener('abort', () => {
            if (streams.delete(c)) c.close()
          })
        },
      })
      return new Response(body, { status: 200, headers: { 'Content-Type': 'text/event-stream' } })
    },
    changed(...topics) {
      const event = enc.encode(`event: changed\ndata: ${JSON.stringify({ topics })}\n\n`)
      for (const c of streams) c.enqueue(event)
    },
    open: () => streams.size,
  }
}
