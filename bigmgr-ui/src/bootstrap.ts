// Adding hosts over SSH (`POST /clusters/{cluster}/hosts/bootstrap`): the machines as typed,
// one a line — `name address[:port]` or `name=address[:port]`, then optionally the host key's
// fingerprint (`SHA256:…`) — read into the request's hosts, and the line a problem's field
// (`hosts[2].address`) is about. No rule of the server's is repeated beyond reading the lines
// (names and addresses are the server's to check).
import type { BootstrapHost } from './api/types'

/** Why a line is not a machine (the message `bootstrap.bad.<reason>`). */
export type MachineReason = 'name' | 'address' | 'port' | 'hostKey' | 'extra'

/** A line that is not a machine: its number (1-based), why, and the text at fault. */
export interface MachineProblem {
  line: number
  reason: MachineReason
  text: string
}

/** The machines of a text: the hosts, the line of each (by index), and the bad lines. */
export interface Machines {
  hosts: BootstrapHost[]
  lines: number[]
  problems: MachineProblem[]
}

/** A host key's fingerprint as `ssh-keygen -lf` prints it (the API's pattern). */
const HOST_KEY = /^SHA256:[A-Za-z0-9+/]{43}$/

/** A port as typed (`22`), or null when it is not one (1–65535). */
function port(s: string): number | null {
  if (!/^\d{1,5}$/.test(s)) return null
  const n = Number(s)
  return n >= 1 && n <= 65535 ? n : null
}

/**
 * `address[:port]`: `[v6]` or `[v6]:port` for an IPv6 address with a port, and an address with
 * more than one `:` (IPv6) as it is. Null port: none given; a string: the bad port.
 */
function splitPort(s: string): { address: string; port: number | null } | { badPort: string } {
  let address = s
  let p: string | undefined
  const bracketed = /^\[([^\]]*)\](?::(.*))?$/.exec(s)
  const colon = s.indexOf(':')
  if (bracketed) [address, p] = [bracketed[1] ?? '', bracketed[2]]
  else if (colon >= 0 && colon === s.lastIndexOf(':')) [address, p] = [s.slice(0, colon), s.slice(colon + 1)]
  if (p === undefined) return { address, port: null }
  const n = port(p)
  return n === null ? { badPort: p } : { address, port: n }
}

/** One line's machine, or why it is not one. */
function machine(text: string): BootstrapHost | { reason: MachineReason; text: string } {
  // `name = address` is `name=address`.
  const words = text.replace(/\s*=\s*/, '=').split(/\s+/)
  const first = words[0] ?? ''
  let name: string
  let rest: string[]
  if (first.includes('=')) {
    name = first.slice(0, first.indexOf('='))
    rest = [first.slice(first.indexOf('=') + 1), ...words.slice(1)]
    if (name === '') return { reason: 'name', text }
  } else {
    name = first
    rest = words.slice(1)
    if (rest.length === 0) return { reason: 'name', text }
  }
  const [at = '', key, ...extra] = rest
  if (at === '') return { reason: 'address', text: name }
  if (extra.length > 0) return { reason: 'extra', text: extra.join(' ') }
  if (key !== undefined && !HOST_KEY.test(key)) return { reason: 'hostKey', text: key }
  const split = splitPort(at)
  if ('badPort' in split) return { reason: 'port', text: split.badPort }
  if (split.address === '') return { reason: 'address', text: name }
  return {
    name,
    address: split.address,
    ...(split.port !== null ? { ssh_port: split.port } : {}),
    ...(key !== undefined ? { host_key: key } : {}),
  }
}

/** The machines `text` lists, one a line; blank lines and `#` comments are skipped. */
export function parseMachines(text: string): Machines {
  const out: Machines = { hosts: [], lines: [], problems: [] }
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) return
    const m = machine(line)
    if ('reason' in m) out.problems.push({ line: i + 1, reason: m.reason, text: m.text })
    else {
      out.hosts.push(m)
      out.lines.push(i + 1)
    }
  })
  return out
}

/** The index of the machine a problem's field is about (`hosts[2].address` → 2), else null. */
export function machineIndex(field: string | undefined): number | null {
  const m = /^hosts\[(\d+)\]/.exec(field ?? '')
  return m ? Number(m[1]) : null
}
