// The assistant's answer to a message: `POST /assistant/threads/{thread}/messages` answers a
// `text/event-stream` (docs/assistant.md, "the chat"). EventSource cannot POST (nor send the
// bearer token), so the stream is read over fetch: the wire format by `SseParser`, each event
// decoded here into a typed `ChatEvent`. Aborting the request (Stop) cancels the answer.
import { send } from './client'
import { SseParser, type SseEvent } from './sse'
import type { Proposal } from './types'
import { asText } from '../text'

export type ChatEvent =
  | { kind: 'token'; text: string }
  | { kind: 'tool_call'; id: string; name: string; arguments: string }
  | { kind: 'tool_result'; id: string; name: string; ok: boolean; content: string }
  | { kind: 'proposal'; proposal: Proposal }
  | { kind: 'done'; message: number | null }
  | { kind: 'error'; title: string; detail: string }

function str(v: unknown): string {
  return typeof v === 'string' ? v : typeof v === 'number' ? String(v) : asText(v)
}

/**
 * One server-sent event as a chat event; `null` for a kind this console does not know (a newer
 * server's). Data that is not the JSON the contract promises is an `error` event.
 */
export function decodeChatEvent(e: SseEvent): ChatEvent | null {
  const known = ['token', 'tool_call', 'tool_result', 'proposal', 'done', 'error']
  if (!known.includes(e.event)) return null
  let d: Record<string, unknown>
  try {
    const v: unknown = JSON.parse(e.data)
    if (typeof v !== 'object' || v === null) throw new Error('not an object')
    d = v as Record<string, unknown>
  } catch {
    return { kind: 'error', title: 'Unreadable answer', detail: `a ${e.event} event whose data is not JSON: ${e.data.slice(0, 200)}` }
  }
  switch (e.event) {
    case 'token':
      return { kind: 'token', text: str(d.text) }
    case 'tool_call':
      return { kind: 'tool_call', id: str(d.id), name: str(d.name), arguments: asText(d.arguments) }
    case 'tool_result':
      return { kind: 'tool_result', id: str(d.id), name: str(d.name), ok: d.ok !== false, content: asText(d.content) }
    case 'proposal':
      return { kind: 'proposal', proposal: d as unknown as Proposal }
    case 'done':
      return { kind: 'done', message: typeof d.message === 'number' ? d.message : null }
    default:
      return { kind: 'error', title: str(d.title) || 'Error', detail: str(d.detail) }
  }
}

/** Incremental: feed it text chunks cut anywhere; it calls `onEvent` per chat event. */
export class ChatStreamParser {
  private readonly sse: SseParser

  constructor(onEvent: (e: ChatEvent) => void) {
    this.sse = new SseParser((raw) => {
      const e = decodeChatEvent(raw)
      if (e) onEvent(e)
    })
  }

  push(chunk: string): void {
    this.sse.push(chunk)
  }

  end(): void {
    this.sse.end()
  }
}

/**
 * Sends `content` to `thread` and calls `onEvent` for each event of the answer as it streams,
 * resolving when the stream ends. A non-2xx answer rejects with its `ApiError` (problem+json);
 * aborting `signal` rejects with an `AbortError` and closes the connection, which cancels the
 * answer on the server (what had streamed is kept).
 */
export async function streamMessage(
  thread: number,
  body: { content: string; provider?: string },
  onEvent: (e: ChatEvent) => void,
  signal: AbortSignal,
): Promise<void> {
  const res = await send('POST', `/assistant/threads/${thread}/messages`, { body, accept: 'text/event-stream', signal })
  if (!res.body) throw new Error('the answer has no body')
  const parser = new ChatStreamParser(onEvent)
  const reader = res.body.getReader()
  const decoder = new TextDecoder()
  // A fetch's body errors when its request is aborted; cancelling it too closes any stream.
  const cancel = (): void => void reader.cancel().catch(() => undefined)
  signal.addEventListener('abort', cancel)
  try {
    for (;;) {
      if (signal.aborted) break
      const { done, value } = await reader.read()
      if (done) break
      parser.push(decoder.decode(value, { stream: true }))
    }
    parser.push(decoder.decode())
  } finally {
    signal.removeEventListener('abort', cancel)
    parser.end()
    reader.releaseLock()
  }
}
