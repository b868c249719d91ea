// Test helper: mount one page as the server's answer for a signed-in user of `role` would show
// it — a fresh pinia with that user's `/me`, the API client on a fake fetch, and a memory router
// at `at` whose `routes` all render the page.
import { flushPromises, mount, type VueWrapper } from '@vue/test-utils'
import { createPinia, setActivePinia } from 'pinia'
import type { Component } from 'vue'
import { createMemoryHistory, createRouter } from 'vue-router'
import { configureClient } from '../api/client'
import type { Role } from '../api/types'
import { i18n } from '../i18n'
import { useAuth } from '../stores/auth'
import { meAs } from './me'

/** The page the last `mountView` mounted, for `unmountView`. */
let mounted: VueWrapper | null = null

/** Unmounts the page `mountView` mounted last and clears the body (pass it to `afterEach`). */
export function unmountView(): void {
  mounted?.unmount()
  mounted = null
  document.body.innerHTML = ''
}

export async function mountView(
  view: Component,
  opts: { role: Role; fetch: typeof fetch; routes: { path: string; name: string }[]; at: string },
): Promise<VueWrapper> {
  const pinia = createPinia()
  setActivePinia(pinia)
  useAuth().me = meAs(opts.role)
  configureClient({ fetch: opts.fetch, getToken: () => 't' })
  const router = createRouter({ history: createMemoryHistory(), routes: opts.routes.map((r) => ({ ...r, component: view })) })
  await router.push(opts.at)
  const w = mount(view, { global: { plugins: [pinia, router, i18n] }, attachTo: document.body })
  mounted = w
  await flushPromises()
  return w
}
