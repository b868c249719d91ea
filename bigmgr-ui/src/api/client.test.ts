import { describe, expect, it, vi } from 'vitest'
import { ApiError, api, configureClient, getAll } from './client'

function json(body: unknown, status = 200, type = 'application/json'): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': type } })
}

describe('client', () => {
  it('sends the bearer token and decodes problem+json into a typed error', async () => {
    const fetch = vi.fn<typeof globalThis.fetch>().mockResolvedValue(
      json({ type: 'urn:bigmgr:problem:cardinality', title: 'Unprocessable Entity', status: 422, detail: 'needs 1 host', field: 'placement' }, 422, 'application/problem+json'),
    )
    configureClient({ fetch, getToken: () => 'bmt_x', onUnauthorized: () => undefined })
    const e = await api.hosts('demo').catch((x: unknown) => x)
    expect(e).toBeInstanceOf(ApiError)
    const err = e as ApiError
    expect(err.status).toBe(422)
    expect(err.kind).toBe('cardinality')
    expect(err.message).toBe('needs 1 host')
    expect(err.field).toBe('placement')
    const [u, init] = fetch.mock.calls[0] ?? []
    expect(u).toBe('/api/v1/clusters/demo/hosts?limit=1000')
    expect((init?.headers as Record<string, string>).Authorization).toBe('Bearer bmt_x')
  })

  it('keeps a spec\'s problems with their lines from an invalid-spec problem', async () => {
    configureClient({
      fetch: () =>
        Promise.resolve(
          json(
            {
              type: 'urn:bigmgr:problem:invalid-spec',
              title: 'Unprocessable Entity',
              status: 422,
              detail: 'the spec has 2 problem(s)',
              problems: [{ line: 6, path: 'services.hello.placement', message: 'no component' }, { message: 'no line' }, 'junk'],
            },
            422,
            'application/problem+json',
          ),
        ),
      getToken: () => 't',
    })
    const e = (await api.planSpec('demo', { spec: 'x', prune: false }).catch((x: unknown) => x)) as ApiError
    expect(e.kind).toBe('invalid-spec')
    expect(e.problem.problems).toEqual([
      { line: 6, path: 'services.hello.placement', message: 'no component' },
      { line: 0, path: '', message: 'no line' },
    ])
  })

  it('keeps a pipeline definition\'s problems with their lines from an invalid-pipeline problem, as a spec\'s', async () => {
    const fetch = vi.fn<typeof globalThis.fetch>().mockResolvedValue(
      json(
        {
          type: 'urn:bigmgr:problem:invalid-pipeline',
          title: 'Unprocessable Entity',
          status: 422,
          detail: 'the pipeline has 1 problem(s)',
          problems: [{ line: 9, path: 'units.filter.replicas', message: 'replicas: 1 to 64' }, { line: 2 }],
        },
        422,
        'application/problem+json',
      ),
    )
    configureClient({ fetch, getToken: () => 't' })
    const e = (await api.createPipeline('demo', { definition: 'name = "p"' }).catch((x: unknown) => x)) as ApiError
    const [u, init] = fetch.mock.calls[0] ?? []
    expect(u).toBe('/api/v1/clusters/demo/pipelines')
    expect(init?.method).toBe('POST')
    expect(init?.body).toBe('{"definition":"name = \\"p\\""}')
    expect(e.kind).toBe('invalid-pipeline')
    expect(e.problem.problems).toEqual([{ line: 9, path: 'units.filter.replicas', message: 'replicas: 1 to 64' }])
  })

  it('calls the 401 hook and still rejects', async () => {
    const onUnauthorized = vi.fn()
    configureClient({
      fetch: () => Promise.resolve(json({ type: 'urn:bigmgr:problem:unauthorized', title: 'Unauthorized', status: 401, detail: 'bad token' }, 401)),
      onUnauthorized,
    })
    await expect(api.clusters()).rejects.toMatchObject({ status: 401 })
    expect(onUnauthorized).toHaveBeenCalledOnce()
  })

  it('does not call the 401 hook for a 403, and keeps the refusal', async () => {
    const onUnauthorized = vi.fn()
    configureClient({
      fetch: () => Promise.resolve(json({ type: 'urn:bigmgr:problem:permission-denied', title: 'Forbidden', status: 403, detail: 'viewer may not' }, 403)),
      onUnauthorized,
    })
    await expect(api.jobAction(1, 'cancel')).rejects.toMatchObject({ status: 403, kind: 'permission-denied' })
    expect(onUnauthorized).not.toHaveBeenCalled()
  })

  it('makes an error of a non-problem answer and of a network failure', async () => {
    configureClient({ fetch: () => Promise.resolve(new Response('oops', { status: 502, statusText: 'Bad Gateway' })) })
    await expect(api.clusters()).rejects.toMatchObject({ status: 502, problem: { title: 'Bad Gateway', detail: 'oops' } })
    configureClient({ fetch: () => Promise.reject(new TypeError('Failed to fetch')) })
    await expect(api.clusters()).rejects.toMatchObject({ status: 0, problem: { detail: 'Failed to fetch' } })
  })

  it('follows next until the last page', async () => {
    const fetch = vi
      .fn<typeof globalThis.fetch>()
      .mockResolvedValueOnce(json({ items: [1, 2], next: '2' }))
      .mockResolvedValueOnce(json({ items: [3], next: null }))
    configureClient({ fetch })
    expect(await getAll<number>('/things', {}, 2)).toEqual([1, 2, 3])
    expect(fetch.mock.calls.map((c) => c[0])).toEqual(['/api/v1/things?limit=2', '/api/v1/things?limit=2&after=2'])
  })
})
