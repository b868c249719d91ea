// The signed-in user: the bearer token (kept in localStorage) and who it belongs to
// (`GET /me`). Logging out forgets the token.
import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import { ApiError, api } from '../api/client'
import type { Me } from '../api/types'
import { can as canDo, type Action } from '../auth/roles'

export const TOKEN_KEY = 'bigmgr.token'

function readToken(): string | null {
  try {
    return localStorage.getItem(TOKEN_KEY)
  } catch {
    return null
  }
}

export const useAuth = defineStore('auth', () => {
  const token = ref<string | null>(readToken())
  const me = ref<Me | null>(null)
  /** Why `me` is unknown while signed in (e.g. the server has no /me). */
  const meError = ref<ApiError | null>(null)

  const signedIn = computed(() => token.value !== null)

  function setToken(t: string | null): void {
    token.value = t
    try {
      if (t === null) localStorage.removeItem(TOKEN_KEY)
      else localStorage.setItem(TOKEN_KEY, t)
    } catch {
      // Private mode without storage: the token lives for this page only.
    }
  }

  async function loadMe(): Promise<void> {
    if (!token.value) {
      me.value = null
      return
    }
    try {
      me.value = await api.me()
      meError.value = null
    } catch (e) {
      me.value = null
      if (e instanceof ApiError && e.status !== 401) meError.value = e
      else throw e
    }
  }

  /** Logs in with a name and password: the server makes a new API token. */
  async function login(name: string, password: string): Promise<void> {
    const t = await api.login(name, password)
    setToken(t.token)
    await loadMe()
  }

  /** Uses a pasted API token; it is kept only if the server accepts it. */
  async function useToken(t: string): Promise<void> {
    setToken(t.trim())
    try {
      await loadMe()
    } catch (e) {
      setToken(null)
      throw e
    }
  }

  function logout(): void {
    setToken(null)
    me.value = null
    meError.value = null
  }

  /** Drops the token after a 401 (it no longer works) but remembers nothing else. */
  function expire(): void {
    logout()
  }

  const can = (action: Action): boolean => canDo(me.value, action)

  return { token, me, meError, signedIn, login, useToken, logout, expire, loadMe, can }
})
