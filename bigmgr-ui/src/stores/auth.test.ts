import { meAs } from '../testing/me'
import { beforeEach, describe, expect, it, vi } from 'vitest'
import { createPinia, setActivePinia } from 'pinia'
import { configureClient } from '../api/client'
import { TOKEN_KEY, useAuth } from './auth'

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } })
}

describe('auth store', () => {
  beforeEach(() => {
    localStorage.clear()
    setActivePinia(createPinia())
  })

  it('logs in, keeps the token, learns the role, and forgets it all on logout', async () => {
    const fetch = vi
      .fn<typeof globalThis.fetch>()
      .mockResolvedValueOnce(json({ token: 'bmt_1', id: 1, user: 'ada', name: 'login', created_at: 0 }, 201))
      .mockResolvedValueOnce(json(meAs('admin', 'ada')))
    const auth = useAuth()
    configureClient({ fetch, getToken: () => auth.token })
    await auth.login('ada', 'pw')
    expect(fetch.mock.calls[0]?.[1]?.body).toBe(JSON.stringify({ name: 'ada', password: 'pw' }))
    expect(localStorage.getItem(TOKEN_KEY)).toBe('bmt_1')
    expect((fetch.mock.calls[1]?.[1]?.headers as Record<string, string>).Authorization).toBe('Bearer bmt_1')
    expect(auth.me).toEqual(meAs('admin', 'ada'))
    expect(auth.can('add-host')).toBe(true)
    auth.logout()
    expect(auth.token).toBeNull()
    expect(localStorage.getItem(TOKEN_KEY)).toBeNull()
    expect(auth.can('read')).toBe(false)
  })

  it('keeps a pasted token only if the server accepts it', async () => {
    const auth = useAuth()
    configureClient({
      fetch: () => Promise.resolve(json({ type: 'urn:bigmgr:problem:unauthorized', title: 'Unauthorized', status: 401, detail: 'no such token' }, 401)),
      getToken: () => auth.token,
      onUnauthorized: () => undefined,
    })
    await expect(auth.useToken(' bmt_bad ')).rejects.toMatchObject({ status: 401 })
    expect(auth.token).toBeNull()
    configureClient({ fetch: () => Promise.resolve(json(meAs('operator', 'olga'))) })
    await auth.useToken(' bmt_good ')
    expect(auth.token).toBe('bmt_good')
    expect(auth.can('control-job')).toBe(true)
    expect(auth.can('add-host')).toBe(false)
  })

  it('reads a saved token at start, and says why the role is unknown when /me fails', async () => {
    localStorage.setItem(TOKEN_KEY, 'bmt_saved')
    const auth = useAuth()
    expect(auth.signedIn).toBe(true)
    configureClient({
      fetch: () => Promise.resolve(json({ type: 'urn:bigmgr:problem:not-found', title: 'Not Found', status: 404, detail: 'no such route' }, 404)),
    })
    await auth.loadMe()
    expect(auth.me).toBeNull()
    expect(auth.meError?.status).toBe(404)
    expect(auth.can('read')).toBe(false)
  })
})
