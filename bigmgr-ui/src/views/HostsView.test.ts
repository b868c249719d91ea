import { describe, expect, it } from 'vitest'
import type { HostView, Role } from '../api/types'
import { mountView } from '../testing/mountView'
import HostsView from './HostsView.vue'

const host: HostView = {
  id: 1,
  name: 'h1',
  cluster: 'demo',
  address: '127.0.0.2',
  state: 'LOST',
  last_heartbeat: null,
  units: [{ id: 1, service: 'hello', component: 'hello_server', state: 'STARTED' }],
}

function mountAs(role: Role, answer: Response) {
  return mountView(HostsView, {
    role,
    fetch: () => Promise.resolve(answer.clone()),
    routes: [
      { path: '/clusters/:cluster/hosts', name: 'hosts' },
      { path: '/clusters/:cluster/hosts/:host', name: 'host' },
    ],
    at: '/clusters/demo/hosts',
  })
}

const ok = () => new Response(JSON.stringify({ items: [host], next: null }), { headers: { 'Content-Type': 'application/json' } })

describe('HostsView', () => {
  it('offers "add host" to an admin only', async () => {
    const admin = await mountAs('admin', ok())
    expect(admin.find('[data-testid="add-host"]').exists()).toBe(true)
    expect(admin.get('[data-testid="hosts-count"]').text()).toBe('1 host')
    admin.unmount()
    const operator = await mountAs('operator', ok())
    expect(operator.find('[data-testid="add-host"]').exists()).toBe(false)
    operator.unmount()
  })

  it('shows a refused call with the server\'s detail', async () => {
    const refused = new Response(
      JSON.stringify({ type: 'urn:bigmgr:problem:permission-denied', title: 'Forbidden', status: 403, detail: 'viewer may not read demo' }),
      { status: 403, headers: { 'Content-Type': 'application/problem+json' } },
    )
    const w = await mountAs('viewer', refused)
    expect(w.get('[data-testid="problem"]').attributes('data-status')).toBe('403')
    expect(w.get('[data-testid="problem-detail"]').text()).toBe('viewer may not read demo')
    w.unmount()
  })
})
