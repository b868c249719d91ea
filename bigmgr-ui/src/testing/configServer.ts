// Test helper for the config and wizard pages: a fake API server that answers each request by
// its method and path (`'GET /clusters/demo/units'`) — a value as JSON, a Response as it is —
// else with a 404 problem (the cluster's event stream too, so a page's live refresh ends
// quietly), and records every call with its query and JSON body.
import type { StackPropertyView, StackView } from '../api/types'
export interface Call {
  method: string
  path: string
  query: URLSearchParams
  body: unknown
  /** The request's abort signal (an event stream ends with it). */
  signal: AbortSignal | null
}

export type Routes = Record<string, (call: Call) => unknown>

export function json(v: unknown, status = 200): Response {
  return new Response(JSON.stringify(v), { status, headers: { 'Content-Type': 'application/json' } })
}

/** A problem+json answer, naming `field` when given. */
export function problem(status: number, detail: string, field?: string): Response {
  return new Response(JSON.stringify({ type: 'urn:bigmgr:problem:invalid', title: 'Problem', status, detail, ...(field ? { field } : {}) }), {
    status,
    headers: { 'Content-Type': 'application/problem+json' },
  })
}

/** One page holding every item (what the paged lists answer). */
export function paged<T>(items: T[]): { items: T[]; next: null } {
  return { items, next: null }
}

export function fakeServer(routes: Routes): { calls: Call[]; fetch: typeof fetch; find: (method: string, path: string) => Call[] } {
  const calls: Call[] = []
  const fetch = (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const u = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url, 'http://test')
    const call: Call = {
      method: init?.method ?? 'GET',
      path: u.pathname.replace(/^\/api\/v1/, ''),
      query: u.searchParams,
      body: typeof init?.body === 'string' ? (JSON.parse(init.body) as unknown) : undefined,
      signal: init?.signal ?? null,
    }
    calls.push(call)
    const route = routes[`${call.method} ${call.path}`]
    if (!route) return Promise.resolve(problem(404, `no route ${call.method} ${call.path}`))
    const answer = route(call)
    return Promise.resolve(answer instanceof Response ? answer : json(answer))
  }
  const find = (method: string, path: string): Call[] => calls.filter((c) => c.method === method && c.path === path)
  return { calls, fetch, find }
}

/** The demo stack as `GET /stacks` lists it: `hello` with one `1+` server component and the
 * config type `hello.conf` holding `properties`. */
export function demoStack(properties: StackPropertyView[], description = ''): StackView[] {
  return [
    {
      name: 'demo',
      version: '1.0.0',
      services: [
        {
          name: 'hello',
          version: '1.0.0',
          description,
          components: [{ name: 'hello_server', category: 'server', cardinality: '1+', commands: ['start', 'stop'] }],
          configs: [{ name: 'hello.conf', path: 'conf/hello.conf', properties }],
        },
      ],
    },
  ]
}
