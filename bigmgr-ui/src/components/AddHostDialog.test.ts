import { afterEach, describe, expect, it } from 'vitest'
import { flushPromises, mount, type VueWrapper } from '@vue/test-utils'
import { createPinia, setActivePinia } from 'pinia'
import { configureClient } from '../api/client'
import { i18n } from '../i18n'
import AddHostDialog from './AddHostDialog.vue'

let wrapper: VueWrapper | null = null
afterEach(() => {
  wrapper?.unmount()
  wrapper = null
})

async function commandFor(answer: Record<string, unknown>): Promise<string> {
  setActivePinia(createPinia())
  configureClient({
    getToken: () => 't',
    fetch: () => Promise.resolve(new Response(JSON.stringify(answer), { status: 201, headers: { 'Content-Type': 'application/json' } })),
  })
  wrapper = mount(AddHostDialog, { props: { cluster: 'demo', show: true }, global: { plugins: [i18n] }, attachTo: document.body })
  await flushPromises()
  const input = (id: string): HTMLInputElement => {
    const el = document.querySelector<HTMLInputElement>(`[data-testid="${id}"] input`)
    if (!el) throw new Error(id)
    return el
  }
  const fields: [string, string][] = [
    ['add-host-name', 'h1'],
    ['add-host-address', '10.0.0.7'],
  ]
  for (const [id, v] of fields) {
    const el = input(id)
    el.value = v
    el.dispatchEvent(new Event('input'))
  }
  await flushPromises()
  document.querySelector<HTMLFormElement>('[data-testid="add-host-dialog"] form')?.dispatchEvent(new Event('submit'))
  await flushPromises()
  return document.querySelector('[data-testid="add-host-command"]')?.textContent ?? ''
}

describe('AddHostDialog', () => {
  it('pins the server CA in the agent command when the server speaks TLS', async () => {
    const fp = 'sha256:' + 'ab'.repeat(32)
    const cmd = await commandFor({ token: 'bmj_x', ca_fingerprint: fp })
    expect(cmd).toContain('--join-token bmj_x')
    expect(cmd).toContain(`--ca-fingerprint ${fp}`)
    expect(cmd).toContain('--name h1 --address 10.0.0.7')
  })

  it('has no fingerprint for a plain HTTP server', async () => {
    const cmd = await commandFor({ token: 'bmj_y', ca_fingerprint: null })
    expect(cmd).toContain('--join-token bmj_y')
    expect(cmd).not.toContain('--ca-fingerprint')
  })
})
