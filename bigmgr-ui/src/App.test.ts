import { describe, expect, it } from 'vitest'
import { flushPromises, mount } from '@vue/test-utils'
import { createPinia, setActivePinia } from 'pinia'
import App from './App.vue'
import { configureClient } from './api/client'
import { i18n } from './i18n'
import { makeRouter } from './router'
import { useAuth } from './stores/auth'
import { meAs } from './testing/me'

describe('App', () => {
  it('moves the keyboard focus to the page with the skip link, leaving the URL alone', async () => {
    const pinia = createPinia()
    setActivePinia(pinia)
    const auth = useAuth()
    auth.token = 't'
    auth.me = meAs('viewer')
    configureClient({
      getToken: () => 't',
      fetch: () => Promise.resolve(new Response(JSON.stringify({ items: [], next: null }), { headers: { 'Content-Type': 'application/json' } })),
    })
    const router = makeRouter()
    await router.push('/')
    const w = mount(App, { global: { plugins: [pinia, router, i18n] }, attachTo: document.body })
    await flushPromises()
    const skip = w.get('[data-testid="skip-link"]')
    expect(skip.attributes('href')).toBe('#main')
    await skip.trigger('click')
    expect(document.activeElement?.id).toBe('main')
    expect(router.currentRoute.value.fullPath).toBe('/')
    // The header's controls are links, selects, switches and buttons: all reachable by Tab.
    expect(w.get('[data-testid="nav-overview"]').element.tagName).toBe('A')
    expect(w.get('[data-testid="logout"]').element.tagName).toBe('BUTTON')
    w.unmount()
  })
})
