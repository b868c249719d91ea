import { afterEach, describe, expect, it } from 'vitest'
import { flushPromises, type VueWrapper } from '@vue/test-utils'
import { getActivePinia } from 'pinia'
import type { JobView, Role } from '../api/types'
import { fakeServer, json, problem, type Call } from '../testing/configServer'
import { mountView, unmountView } from '../testing/mountView'
import BootstrapHostsView from './BootstrapHostsView.vue'

afterEach(() => {
  unmountView()
  localStorage.clear()
  sessionStorage.clear()
})

const KEY = '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----'
const FINGERPRINT = 'SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s'
const PATH = '/clusters/demo/hosts/bootstrap'

const queued: JobView = {
  id: 42,
  cluster: 'demo',
  command: 'bootstrap',
  target: { units: [1, 2] },
  options: {},
  state: 'QUEUED',
  created_at: 0,
}

/** The page on a fake server whose bootstrap answers `answer` (the queued job by default). */
async function mountAs(role: Role, answer: () => Response = () => json(queued, 202)): Promise<{ w: VueWrapper; sent: () => Call[] }> {
  const server = fakeServer({ [`POST ${PATH}`]: answer })
  const w = await mountView(BootstrapHostsView, {
    role,
    fetch: server.fetch,
    routes: [
      { path: '/clusters/:cluster/hosts/bootstrap', name: 'hosts-bootstrap' },
      { path: '/jobs/:id', name: 'job' },
    ],
    at: PATH,
  })
  return { w, sent: () => server.find('POST', PATH) }
}

async function fill(w: VueWrapper, testid: string, value: string): Promise<void> {
  await w.get(`[data-testid="${testid}"] ${testid === 'bootstrap-machines' || testid === 'bootstrap-key' ? 'textarea' : 'input'}`).setValue(value)
  await flushPromises()
}

async function submit(w: VueWrapper): Promise<void> {
  await w.get('[data-testid="bootstrap-form"]').trigger('submit')
  await flushPromises()
}

const value = (w: VueWrapper, selector: string): string => (w.get(selector).element as HTMLInputElement | HTMLTextAreaElement).value

/** Everything the browser and the stores keep, as one text. */
function kept(): string {
  const storage = (s: Storage) => Object.fromEntries(Array.from({ length: s.length }, (_, i) => s.key(i) ?? '').map((k) => [k, s.getItem(k)]))
  return JSON.stringify([storage(localStorage), storage(sessionStorage), getActivePinia()?.state.value ?? null])
}

describe('BootstrapHostsView', () => {
  it('sends the machines, user, port, key and passphrase, upgrade and the advanced settings, then opens the job; the credential is cleared and kept nowhere', async () => {
    const { w, sent } = await mountAs('admin')
    expect(w.get('[data-testid="bootstrap-submit"]').attributes('disabled')).toBeDefined()
    await fill(w, 'bootstrap-machines', `# rack 1\nm1 10.0.0.5\nm2=10.0.0.6:2222 ${FINGERPRINT}\n`)
    expect(w.get('[data-testid="bootstrap-count"]').text()).toBe('2 machines')
    expect(value(w, '[data-testid="bootstrap-user"] input')).toBe('root')
    await fill(w, 'bootstrap-user', 'deploy')
    await fill(w, 'bootstrap-port', '2200')
    // A number is taken when its field is left (as the healing form's).
    await w.get('[data-testid="bootstrap-port"] input').trigger('blur')
    await fill(w, 'bootstrap-key', `\n${KEY}\n\n`)
    await fill(w, 'bootstrap-passphrase', 'open sesame')
    await w.get('[data-testid="bootstrap-upgrade"]').trigger('click')
    await w.get('[data-testid="bootstrap-advanced"] .n-collapse-item__header-main').trigger('click')
    await flushPromises()
    await fill(w, 'bootstrap-prefix', ' /srv/agent ')
    await fill(w, 'bootstrap-server', 'https://mgr.example.com:7070')
    expect(w.get('[data-testid="bootstrap-submit"]').attributes('disabled')).toBeUndefined()
    await submit(w)

    expect(sent()).toHaveLength(1)
    expect(sent()[0]?.body).toEqual({
      hosts: [
        { name: 'm1', address: '10.0.0.5' },
        { name: 'm2', address: '10.0.0.6', ssh_port: 2222, host_key: FINGERPRINT },
      ],
      ssh_user: 'deploy',
      ssh_port: 2200,
      ssh_key: `${KEY}\n`,
      ssh_key_passphrase: 'open sesame',
      upgrade: true,
      prefix: '/srv/agent',
      server: 'https://mgr.example.com:7070',
    })
    expect(w.vm.$route.name).toBe('job')
    expect(w.vm.$route.params.id).toBe('42')
    expect(value(w, '[data-testid="bootstrap-key"] textarea')).toBe('')
    expect(value(w, '[data-testid="bootstrap-passphrase"] input')).toBe('')
    expect(kept()).not.toContain('b3BlbnNzaC1rZXktdjE')
    expect(kept()).not.toContain('open sesame')
  })

  it('sends a password instead of a key, and only what was given (the server has defaults)', async () => {
    const { w, sent } = await mountAs('admin')
    await fill(w, 'bootstrap-machines', 'm1 10.0.0.5')
    await fill(w, 'bootstrap-key', KEY)
    await w.get('[data-testid="bootstrap-login-password"] input').trigger('change')
    await flushPromises()
    expect(w.find('[data-testid="bootstrap-key"]').exists()).toBe(false)
    // No password yet: nothing to log in with.
    expect(w.get('[data-testid="bootstrap-submit"]').attributes('disabled')).toBeDefined()
    await fill(w, 'bootstrap-password', 'pw 1')
    await fill(w, 'bootstrap-user', '')
    await submit(w)
    expect(sent()[0]?.body).toEqual({ hosts: [{ name: 'm1', address: '10.0.0.5' }], ssh_password: 'pw 1', upgrade: false })
    expect(w.vm.$route.name).toBe('job')
    expect(value(w, '[data-testid="bootstrap-password"] input')).toBe('')
    expect(kept()).not.toContain('pw 1')
  })

  it('takes the key from a file picked', async () => {
    const { w, sent } = await mountAs('admin')
    await fill(w, 'bootstrap-machines', 'm1 10.0.0.5')
    const input = w.get<HTMLInputElement>('[data-testid="bootstrap-key-file"]')
    Object.defineProperty(input.element, 'files', { value: [new File([`${KEY}\n`], 'id_ed25519')], configurable: true })
    await input.trigger('change')
    await flushPromises()
    expect(value(w, '[data-testid="bootstrap-key"] textarea')).toBe(`${KEY}\n`)
    await submit(w)
    expect(sent()[0]?.body).toMatchObject({ ssh_key: `${KEY}\n` })
  })

  it('reports each bad line by its number once the field is left, and sends nothing', async () => {
    const { w, sent } = await mountAs('admin')
    await fill(w, 'bootstrap-machines', 'm1 10.0.0.5\n10.0.0.6\nm3 10.0.0.7:99999')
    await fill(w, 'bootstrap-key', KEY)
    // Not while typing.
    expect(w.find('[data-testid="bootstrap-machine-problems"]').exists()).toBe(false)
    await w.get('[data-testid="bootstrap-machines"] textarea').trigger('blur')
    await flushPromises()
    const problems = w.findAll('[data-testid="bootstrap-machine-problem"]')
    expect(problems.map((p) => p.attributes('data-line'))).toEqual(['2', '3'])
    expect(problems[0]?.text()).toBe('Line 2: 10.0.0.6: give a name and an address (name address, or name=address)')
    expect(problems[1]?.text()).toBe('Line 3: port “99999” is not a number from 1 to 65535')
    await submit(w)
    expect(sent()).toHaveLength(0)
    // The credential stays while nothing was sent.
    expect(value(w, '[data-testid="bootstrap-key"] textarea')).toBe(KEY)
    // Fixed: the problems go, and it is sent.
    await fill(w, 'bootstrap-machines', 'm1 10.0.0.5\nm2 10.0.0.6\nm3 10.0.0.7:22')
    expect(w.find('[data-testid="bootstrap-machine-problems"]').exists()).toBe(false)
    await submit(w)
    expect(sent()).toHaveLength(1)
  })

  it('shows a 422 about a machine on its line with the field named, and clears the credential', async () => {
    const { w, sent } = await mountAs('admin', () => problem(422, "'10.0.0.999' is not an IP address or a DNS name", 'hosts[1].address'))
    await fill(w, 'bootstrap-machines', '# two machines\nm1 10.0.0.5\n\nm2 10.0.0.999')
    await fill(w, 'bootstrap-key', KEY)
    await submit(w)
    expect(sent()).toHaveLength(1)
    expect(w.vm.$route.name).toBe('hosts-bootstrap')
    const err = w.get('[data-testid="field-error-hosts[1].address"]')
    expect(err.text()).toBe("Line 4: '10.0.0.999' is not an IP address or a DNS name")
    expect(w.find('[data-testid="problem"]').exists()).toBe(false)
    expect(value(w, '[data-testid="bootstrap-key"] textarea')).toBe('')
    expect(value(w, '[data-testid="bootstrap-machines"] textarea')).toBe('# two machines\nm1 10.0.0.5\n\nm2 10.0.0.999')
    // Edited: the refusal (about the text as sent) goes.
    await fill(w, 'bootstrap-machines', '# two machines\nm1 10.0.0.5\n\nm2 10.0.0.9')
    expect(w.find('[data-testid="field-error-hosts[1].address"]').exists()).toBe(false)
  })

  it('shows a 422 on the field it names (Advanced opened for one of its own), and any other problem with its detail and field above the button', async () => {
    const answers = [
      () => problem(422, 'not a usable private key (OpenSSH format; its passphrase in ssh_key_passphrase): bad base64', 'ssh_key'),
      () => problem(422, "'ftp://x' is not an http:// or https:// URL", 'server'),
      () => problem(422, 'name between 1 and 1000 machines to bootstrap', 'hosts'),
      // A field the form does not show now (the password, while logging in with a key).
      () => problem(422, 'give exactly one of ssh_key (a private key) and ssh_password', 'ssh_password'),
      () => problem(422, 'this server has no bigmgr-agent to copy: start it with --agent-dir'),
      () => problem(409, 'host m1 is being bootstrapped already: wait for that job to end'),
    ]
    const { w, sent } = await mountAs('admin', () => (answers.shift() ?? (() => json(queued, 202)))())
    await fill(w, 'bootstrap-machines', 'm1 10.0.0.5')
    const again = async (): Promise<void> => {
      await fill(w, 'bootstrap-key', KEY)
      await submit(w)
    }
    await again()
    expect(w.get('[data-testid="field-error-ssh_key"]').text()).toBe('not a usable private key (OpenSSH format; its passphrase in ssh_key_passphrase): bad base64')
    expect(w.find('[data-testid="problem"]').exists()).toBe(false)

    await again()
    expect(w.get('[data-testid="field-error-server"]').text()).toBe("'ftp://x' is not an http:// or https:// URL")
    expect(w.find('[data-testid="field-error-ssh_key"]').exists()).toBe(false)

    await again()
    expect(w.get('[data-testid="field-error-hosts"]').text()).toBe('name between 1 and 1000 machines to bootstrap')

    await again()
    expect(w.get('[data-testid="problem"]').attributes('data-status')).toBe('422')
    expect(w.get('[data-testid="problem-detail"]').text()).toBe('give exactly one of ssh_key (a private key) and ssh_password')
    expect(w.get('[data-testid="problem-field"]').text()).toBe('ssh_password')

    await again()
    expect(w.get('[data-testid="problem-detail"]').text()).toBe('this server has no bigmgr-agent to copy: start it with --agent-dir')
    expect(w.find('[data-testid="problem-field"]').exists()).toBe(false)

    await again()
    expect(w.get('[data-testid="problem"]').attributes('data-status')).toBe('409')
    expect(w.get('[data-testid="problem-detail"]').text()).toBe('host m1 is being bootstrapped already: wait for that job to end')
    expect(sent()).toHaveLength(6)
    expect(w.vm.$route.name).toBe('hosts-bootstrap')
  })

  it('tells a non-admin to ask an admin, with no form', async () => {
    for (const role of ['operator', 'viewer'] as const) {
      const { w } = await mountAs(role)
      expect(w.get('[data-testid="bootstrap-forbidden"]').text()).toBe(`Your role (${role}) cannot add hosts over SSH; ask an admin.`)
      expect(w.find('[data-testid="bootstrap-form"]').exists()).toBe(false)
      unmountView()
    }
  })
})
