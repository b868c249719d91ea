import { describe, expect, it, vi } from 'vitest'
import { SseParser, backoff, followSse, readSse, type SseEvent } from './sse'
import { ApiError, configureClient } from './client'

function parse(chunks: string[]): SseEvent[] {
  const out: SseEvent[] = []
  const p = new SseParser((e) => out.push(e))
  for (const c of chunks) p.push(c)
  return out
}

describe('SseParser', () => {
  it('reads named events with JSON data', () => {
    expect(parse(['event: job\ndata: {"id":1,"state":"RUNNING"}\n\n'])).toEqual([
      { event: 'job', data: '{"id":1,"state":"RUNNING"}' },
    ])
  })

  it('joins events cut at any chunk boundary', () => {
    const text = 'event: task\ndata: {"id":2}\n\nevent: end\ndata: {"id":1}\n\n'
    for (let i = 1; i < text.length; i++) {
      expect(parse([text.slice(0, i), text.slice(i)])).toEqual([
        { event: 'task', data: '{"id":2}' },
        { event: 'end', data: '{"id":1}' },
      ])
    }
  })

  it('joins multi-line data with newlines and handles CRLF split between chunks', () => {
    expect(parse(['data: a\r', '\ndata: b\r\n\r\n'])).toEqual([{ event: 'message', data: 'a\nb' }])
  })

  it('skips comments (keep-alives) and events without data', () => {
    expect(parse([':\n\n: keep-alive\n\nevent: job\n\ndata: x\n\n'])).toEqual([{ event: 'message', data: 'x' }])
  })

  it('keeps id and retry, drops an unfinished event at the end', () => {
    const out: SseEvent[] = []
    const p = new SseParser((e) => out.push(e))
    p.push('retry: 3000\nid: 7\ndata: y\n\ndata: unfinished')
    p.end()
    expect(out).toEqual([{ event: 'message', data: 'y', id: '7' }])
    expect(p.retry).toBe(3000)
  })

  it('reads a byte stream with multi-byte characters split across chunks', async () => {
    const bytes = new TextEncoder().encode('data: 中文\n\n')
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(bytes.slice(0, 7))
        c.enqueue(bytes.slice(7))
        c.close()
      },
    })
    const out: SseEvent[] = []
    await readSse(body, (e) => out.push(e))
    expect(out).toEqual([{ event: 'message', data: '中文' }])
  })
})

function streamOf(text: string): Response {
  return new Response(new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode(text)); c.close() } }), {
    status: 200,
    headers: { 'Content-Type': 'text/event-stream' },
  })
}

describe('followSse', () => {
  it('doubles the backoff up to a cap', () => {
    expect([1, 2, 3, 10].map((n) => backoff(n, 100, 1000))).toEqual([100, 200, 400, 1000])
  })

  it('reconnects after a network loss, re-reading before each connection, and stops when finished', async () => {
    let done = false
    const fetch = vi
      .fn<typeof globalThis.fetch>()
      .mockRejectedValueOnce(new TypeError('network down'))
      .mockResolvedValueOnce(streamOf('event: task\ndata: 1\n\n'))
      .mockResolvedValueOnce(streamOf('event: end\ndata: 2\n\n'))
    configureClient({ fetch, getToken: () => 't' })
    const connects: number[] = []
    const events: string[] = []
    const delays: number[] = []
    await followSse('/jobs/1/events', {
      signal: new AbortController().signal,
      onConnect: (n) => {
        connects.push(n)
      },
      onEvent: (e) => {
        events.push(e.event)
        if (e.event === 'end') done = true
      },
      onRetry: (d) => delays.push(d),
      finished: () => done,
      baseDelay: 10,
      sleep: () => Promise.resolve(),
    })
    expect(connects).toEqual([0, 1, 2])
    expect(events).toEqual(['task', 'end'])
    expect(delays).toEqual([10, 10])
    expect(fetch).toHaveBeenCalledTimes(3)
    const init = fetch.mock.calls[0]?.[1]
    expect((init?.headers as Record<string, string>).Authorization).toBe('Bearer t')
  })

  it('does not retry a 404: it throws the problem', async () => {
    const fetch = vi.fn<typeof globalThis.fetch>().mockResolvedValue(
      new Response(JSON.stringify({ type: 'urn:bigmgr:problem:not-found', title: 'Not Found', status: 404, detail: 'no job 9' }), {
        status: 404,
        headers: { 'Content-Type': 'application/problem+json' },
      }),
    )
    configureClient({ fetch })
    await expect(
      followSse('/jobs/9/events', { signal: new AbortController().signal, onEvent: () => undefined, finished: () => false }),
    ).rejects.toBeInstanceOf(ApiError)
  })
})
