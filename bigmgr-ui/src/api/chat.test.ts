import { describe, expect, it } from 'vitest'
import { ChatStreamParser, decodeChatEvent, streamMessage, type ChatEvent } from './chat'
import { ApiError, configureClient } from './client'
import { fakeServer, problem } from '../testing/configServer'

function parse(chunks: string[]): ChatEvent[] {
  const out: ChatEvent[] = []
  const p = new ChatStreamParser((e) => out.push(e))
  for (const c of chunks) p.push(c)
  p.end()
  return out
}

const PROPOSAL = {
  id: 4,
  thread: 1,
  title: 'retry job 12',
  action: { title: 'retry job 12', method: 'POST', path: '/jobs/12/retry', body: null },
  state: 'pending',
  created_at: 1,
}

/** One answer with every kind of event, in the contract's order. */
const ANSWER = [
  'event: token\ndata: {"text":"Job 12 "}\n\n',
  'event: tool_call\ndata: {"id":"c1","name":"get_job","arguments":"{\\"id\\":12}"}\n\n',
  'event: tool_result\ndata: {"id":"c1","name":"get_job","ok":true,"content":"FAILED: port 2181 in use"}\n\n',
  'event: token\ndata: {"text":"failed: a port is taken."}\n\n',
  `event: proposal\ndata: ${JSON.stringify(PROPOSAL)}\n\n`,
  'event: done\ndata: {"message":9}\n\n',
].join('')

const EXPECTED: ChatEvent[] = [
  { kind: 'token', text: 'Job 12 ' },
  { kind: 'tool_call', id: 'c1', name: 'get_job', arguments: '{"id":12}' },
  { kind: 'tool_result', id: 'c1', name: 'get_job', ok: true, content: 'FAILED: port 2181 in use' },
  { kind: 'token', text: 'failed: a port is taken.' },
  { kind: 'proposal', proposal: PROPOSAL as never },
  { kind: 'done', message: 9 },
]

describe('the chat event stream', () => {
  it('decodes every kind of event in order', () => {
    expect(parse([ANSWER])).toEqual(EXPECTED)
  })

  it('gives the same events however the stream is cut into chunks', () => {
    for (let i = 1; i < ANSWER.length; i++) {
      expect(parse([ANSWER.slice(0, i), ANSWER.slice(i)]), `cut at ${i}`).toEqual(EXPECTED)
    }
    // One character at a time, with CRLF line ends.
    const crlf = ANSWER.replaceAll('\n', '\r\n')
    expect(parse(Array.from({ length: crlf.length }, (_, i) => crlf.charAt(i)))).toEqual(EXPECTED)
  })

  it('joins data written over several lines (JSON split at its whitespace)', () => {
    const text = 'event: error\ndata: {"title": "provider failed",\ndata:  "detail": "timed out after\\n30 s"}\n\n'
    expect(parse([text])).toEqual([{ kind: 'error', title: 'provider failed', detail: 'timed out after\n30 s' }])
    const token = 'event: token\ndata: {\ndata: "text"\ndata: :\ndata: "a"}\n\n'
    expect(parse([token.slice(0, 20), token.slice(20)])).toEqual([{ kind: 'token', text: 'a' }])
  })

  it('skips comments (keep-alives) and unknown kinds; data that is not JSON is an error event', () => {
    expect(parse([': ping\n\nevent: thinking\ndata: {}\n\nevent: token\ndata: {"text":"x"}\n\n'])).toEqual([{ kind: 'token', text: 'x' }])
    expect(decodeChatEvent({ event: 'token', data: 'not json' })).toMatchObject({ kind: 'error', title: 'Unreadable answer' })
  })

  it('shows tool arguments and results given as JSON values as text; a failed tool is not ok', () => {
    expect(decodeChatEvent({ event: 'tool_call', data: '{"id":"c","name":"n","arguments":{"a":1}}' })).toEqual({
      kind: 'tool_call',
      id: 'c',
      name: 'n',
      arguments: '{\n  "a": 1\n}',
    })
    expect(decodeChatEvent({ event: 'tool_result', data: '{"id":"c","name":"n","ok":false,"content":["x"]}' })).toMatchObject({ ok: false, content: '[\n  "x"\n]' })
  })

  it('drops an unfinished event when the stream ends', () => {
    expect(parse(['event: token\ndata: {"text":"a"}\n\nevent: token\ndata: {"text":"b"}'])).toEqual([{ kind: 'token', text: 'a' }])
  })
})

describe('streamMessage', () => {
  it('posts the message with the token and reads the answer as it streams', async () => {
    const enc = new TextEncoder()
    const s = fakeServer({
      'POST /assistant/threads/3/messages': () =>
        new Response(
          new ReadableStream<Uint8Array>({
            start(c) {
              c.enqueue(enc.encode(ANSWER.slice(0, 50)))
              c.enqueue(enc.encode(ANSWER.slice(50)))
              c.close()
            },
          }),
          { headers: { 'Content-Type': 'text/event-stream' } },
        ),
    })
    const seen: { auth: string | null; accept: string | null }[] = []
    configureClient({
      getToken: () => 'tok',
      fetch: (input, init) => {
        const h = new Headers(init?.headers)
        seen.push({ auth: h.get('Authorization'), accept: h.get('Accept') })
        return s.fetch(input, init)
      },
    })
    const out: ChatEvent[] = []
    await streamMessage(3, { content: 'why?' }, (e) => out.push(e), new AbortController().signal)
    expect(out).toEqual(EXPECTED)
    expect(s.find('POST', '/assistant/threads/3/messages').map((c) => c.body)).toEqual([{ content: 'why?' }])
    expect(seen).toEqual([{ auth: 'Bearer tok', accept: 'text/event-stream' }])
  })

  it("rejects with the server's problem on a non-2xx answer", async () => {
    const s = fakeServer({ 'POST /assistant/threads/3/messages': () => problem(409, 'no provider is configured') })
    configureClient({ fetch: s.fetch, getToken: () => 't' })
    const e = await streamMessage(3, { content: 'x' }, () => undefined, new AbortController().signal).catch((x: unknown) => x)
    expect(e).toBeInstanceOf(ApiError)
    expect((e as ApiError).problem.detail).toBe('no provider is configured')
  })

  it('stops reading when aborted: the connection is closed', async () => {
    let cancelled = false
    const s = fakeServer({
      'POST /assistant/threads/3/messages': () =>
        new Response(
          new ReadableStream<Uint8Array>({
            start(c) {
              c.enqueue(new TextEncoder().encode('event: token\ndata: {"text":"a"}\n\n'))
            },
            cancel() {
              cancelled = true
            },
          }),
          { headers: { 'Content-Type': 'text/event-stream' } },
        ),
    })
    configureClient({ fetch: s.fetch, getToken: () => 't' })
    const stop = new AbortController()
    const out: ChatEvent[] = []
    const done = streamMessage(3, { content: 'x' }, (e) => {
      out.push(e)
      stop.abort()
    }, stop.signal)
    await done.catch(() => undefined)
    expect(out).toEqual([{ kind: 'token', text: 'a' }])
    expect(cancelled).toBe(true)
  })
})
