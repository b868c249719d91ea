// The assistant's chat (docs/assistant.md, "the chat"): the drawer's state, kept across pages —
// the cluster it is about, the user's threads and the open one, what was said in it, and the
// answer streaming now (stopped by aborting its request). "Ask about this" on a page opens the
// drawer with a question filled in; nothing is sent until the user sends it. A thread for the
// cluster is created with the first message when the user has none there.
import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import { ApiError, api } from '../api/client'
// The stream reader is loaded with the first message (it is not needed to open the console).
import type { ChatEvent } from '../api/chat'
import { asText } from '../text'
import type { ChatMessage, Problem, Proposal, ProviderView, ThreadDetail, ThreadView } from '../api/types'

export type ChatItem =
  | { key: number; kind: 'user'; text: string }
  | { key: number; kind: 'assistant'; text: string; cancelled: boolean }
  | { key: number; kind: 'tool'; id: string; name: string; arguments: string; result: { ok: boolean | null; content: string } | null }
  | { key: number; kind: 'proposal'; proposal: Proposal }

type ToolItem = Extract<ChatItem, { kind: 'tool' }>

/** The latest tool item of the call `id`. */
function toolCall(list: ChatItem[], id: string): ToolItem | undefined {
  for (let i = list.length - 1; i >= 0; i--) {
    const x = list[i]
    if (x?.kind === 'tool' && x.id === id) return x
  }
  return undefined
}

type Entry = { at: number; i: number } & ({ m: ChatMessage } | { p: Proposal })

/** The stored messages and proposals of a thread as the drawer shows them, oldest first. */
export function itemsOf(d: ThreadDetail, key: () => number): ChatItem[] {
  const out: ChatItem[] = []
  const entries: Entry[] = [
    ...d.messages.map((m, i) => ({ at: m.created_at, i, m })),
    ...d.proposals.map((p, i) => ({ at: p.created_at, i: d.messages.length + i, p })),
  ].sort((a, b) => a.at - b.at || a.i - b.i)
  for (const e of entries) {
    if ('p' in e) {
      out.push({ key: key(), kind: 'proposal', proposal: e.p })
      continue
    }
    const m = e.m
    if (m.role === 'user') {
      out.push({ key: key(), kind: 'user', text: m.content })
    } else if (m.role === 'assistant') {
      if (m.content) out.push({ key: key(), kind: 'assistant', text: m.content, cancelled: false })
      for (const c of m.tool_calls ?? []) {
        out.push({ key: key(), kind: 'tool', id: c.id, name: c.name, arguments: asText(c.arguments), result: null })
      }
    } else {
      const call = toolCall(out, m.tool_call_id ?? '')
      if (call) call.result = { ok: null, content: m.content }
      else out.push({ key: key(), kind: 'tool', id: m.tool_call_id ?? '', name: '', arguments: '', result: { ok: null, content: m.content } })
    }
  }
  return out
}

function isAbort(e: unknown): boolean {
  return e instanceof DOMException && e.name === 'AbortError'
}

export const useAssistant = defineStore('assistant', () => {
  const open = ref(false)
  /** The cluster the conversation is about. */
  const cluster = ref<string | null>(null)
  /** The question being written (prefilled by "Ask about this"). */
  const draft = ref('')
  const providers = ref<ProviderView[] | null>(null)
  const providersError = ref<ApiError | null>(null)
  /** The model to ask, or null for the server's default. */
  const provider = ref<string | null>(null)
  const threads = ref<ThreadView[]>([])
  const threadsError = ref<ApiError | null>(null)
  const threadId = ref<number | null>(null)
  const items = ref<ChatItem[]>([])
  const loading = ref(false)
  const loadError = ref<ApiError | null>(null)
  const streaming = ref(false)
  /** The server refused the message (problem+json). */
  const sendError = ref<ApiError | null>(null)
  /** An `error` event of the answer (the provider failed), or the stream broke off. */
  const streamError = ref<Problem | null>(null)
  /** The proposal being confirmed or rejected, and the refusals of each. */
  const deciding = ref<number | null>(null)
  const decideErrors = ref<Record<number, ApiError>>({})
  let controller: AbortController | null = null
  /** Bumped whenever the shown conversation changes: a stopped answer's end touches it no more. */
  let generation = 0
  let counter = 0
  const key = (): number => ++counter

  const thread = computed(() => threads.value.find((x) => x.id === threadId.value) ?? null)
  const noProvider = computed(() => providers.value !== null && providers.value.length === 0)

  async function loadProviders(): Promise<void> {
    try {
      providers.value = await api.providers()
      providersError.value = null
      if (provider.value !== null && !providers.value.some((p) => p.name === provider.value)) provider.value = null
    } catch (e) {
      if (e instanceof ApiError) providersError.value = e
      else throw e
    }
  }

  async function loadThreads(): Promise<void> {
    try {
      threads.value = await api.threads()
      threadsError.value = null
    } catch (e) {
      if (e instanceof ApiError) threadsError.value = e
      else throw e
    }
  }

  function clear(): void {
    generation++
    items.value = []
    sendError.value = null
    streamError.value = null
    decideErrors.value = {}
  }

  /** Opens thread `id` (its cluster becomes the drawer's). */
  async function selectThread(id: number): Promise<void> {
    stop()
    threadId.value = id
    clear()
    loading.value = true
    try {
      const d = await api.thread(id)
      if (threadId.value !== id) return
      cluster.value = d.thread.cluster
      items.value = itemsOf(d, key)
      loadError.value = null
    } catch (e) {
      if (e instanceof ApiError) loadError.value = e
      else throw e
    } finally {
      loading.value = false
    }
  }

  /** A new conversation about the drawer's cluster (created when its first message is sent). */
  function newThread(): void {
    stop()
    threadId.value = null
    loadError.value = null
    clear()
  }

  /** Reads the providers and threads; opens the newest thread of the cluster unless one is. */
  async function load(): Promise<void> {
    await Promise.all([loadProviders(), loadThreads()])
    if (streaming.value) return
    const current = thread.value
    if (current && current.cluster === cluster.value) return
    const newest = threads.value.find((x) => x.cluster === cluster.value)
    if (newest) await selectThread(newest.id)
    else newThread()
  }

  /** Opens the drawer about `about` (else the cluster it was about). */
  function show(about?: string | null): Promise<void> {
    if (about && about !== cluster.value && !streaming.value) cluster.value = about
    open.value = true
    return load()
  }

  /** "Ask about this": opens the drawer about `about` with `question` ready to send. */
  function ask(question: string, about: string): Promise<void> {
    draft.value = question
    return show(about)
  }

  function onEvent(e: ChatEvent): void {
    const last = items.value.at(-1)
    switch (e.kind) {
      case 'token':
        if (last?.kind === 'assistant') last.text += e.text
        else items.value.push({ key: key(), kind: 'assistant', text: e.text, cancelled: false })
        break
      case 'tool_call':
        items.value.push({ key: key(), kind: 'tool', id: e.id, name: e.name, arguments: e.arguments, result: null })
        break
      case 'tool_result': {
        const call = toolCall(items.value, e.id)
        if (call) call.result = { ok: e.ok, content: e.content }
        else items.value.push({ key: key(), kind: 'tool', id: e.id, name: e.name, arguments: '', result: { ok: e.ok, content: e.content } })
        break
      }
      case 'proposal': {
        const i = items.value.findIndex((x) => x.kind === 'proposal' && x.proposal.id === e.proposal.id)
        if (i >= 0) items.value.splice(i, 1, { key: key(), kind: 'proposal', proposal: e.proposal })
        else items.value.push({ key: key(), kind: 'proposal', proposal: e.proposal })
        break
      }
      case 'error':
        streamError.value = { type: 'urn:bigmgr-ui:problem:assistant', title: e.title, status: 0, detail: e.detail }
        break
      case 'done':
        break
    }
  }

  /** Sends the draft and follows the answer as it streams. */
  async function send(): Promise<void> {
    const text = draft.value.trim()
    const about = cluster.value
    if (!text || !about || streaming.value) return
    sendError.value = null
    streamError.value = null
    const stopper = new AbortController()
    controller = stopper
    const gen = generation
    streaming.value = true
    const sent = { key: key(), kind: 'user' as const, text }
    try {
      if (threadId.value === null) {
        const created = await api.createThread(about, text.length > 80 ? `${text.slice(0, 79)}…` : text)
        threads.value = [created, ...threads.value.filter((x) => x.id !== created.id)]
        threadId.value = created.id
      }
      items.value.push(sent)
      draft.value = ''
      const body = { content: text, ...(provider.value ? { provider: provider.value } : {}) }
      const { streamMessage } = await import('../api/chat')
      await streamMessage(threadId.value, body, (e) => {
        if (gen === generation) onEvent(e)
      }, stopper.signal)
    } catch (e) {
      if (stopper.signal.aborted || isAbort(e)) {
        // Stopped: what streamed is kept.
      } else if (e instanceof ApiError) {
        // Refused (before any answer): the question goes back to the box.
        sendError.value = e
        items.value = items.value.filter((x) => x.key !== sent.key)
        if (!draft.value) draft.value = text
      } else if (e instanceof Error) {
        streamError.value = { type: 'urn:bigmgr-ui:problem:network', title: 'The answer broke off', status: 0, detail: e.message }
      } else {
        throw e
      }
    } finally {
      if (stopper.signal.aborted && gen === generation) {
        const last = items.value.at(-1)
        if (last?.kind === 'assistant') last.cancelled = true
        else items.value.push({ key: key(), kind: 'assistant', text: '', cancelled: true })
      }
      if (controller === stopper) controller = null
      streaming.value = false
    }
  }

  /** Stops the answer streaming now: its request is aborted, which cancels it on the server. */
  function stop(): void {
    controller?.abort()
  }

  /** Confirms (runs its request with the user's token) or rejects a proposal. */
  async function decide(id: number, decision: 'confirm' | 'reject'): Promise<void> {
    if (deciding.value !== null) return
    deciding.value = id
    decideErrors.value = Object.fromEntries(Object.entries(decideErrors.value).filter(([k]) => k !== String(id)))
    try {
      const p = await api.decideProposal(id, decision)
      const i = items.value.findIndex((x) => x.kind === 'proposal' && x.proposal.id === id)
      if (i >= 0) items.value.splice(i, 1, { key: key(), kind: 'proposal', proposal: p })
    } catch (e) {
      if (e instanceof ApiError) decideErrors.value = { ...decideErrors.value, [id]: e }
      else throw e
    } finally {
      deciding.value = null
    }
  }

  /** Forgets everything (logging out): the next user sees none of it. */
  function reset(): void {
    stop()
    newThread()
    open.value = false
    cluster.value = null
    draft.value = ''
    providers.value = null
    providersError.value = null
    provider.value = null
    threads.value = []
    threadsError.value = null
  }

  return {
    reset,
    open,
    cluster,
    draft,
    providers,
    providersError,
    provider,
    threads,
    threadsError,
    threadId,
    thread,
    items,
    loading,
    loadError,
    streaming,
    sendError,
    streamError,
    deciding,
    decideErrors,
    noProvider,
    show,
    ask,
    load,
    selectThread,
    newThread,
    send,
    stop,
    decide,
  }
})
