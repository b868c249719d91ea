// What the signed-in user may do, for hiding and disabling controls only: `GET /me` lists the
// actions its role allows, from the server's one rule table (bigmgr-core/src/auth.rs), and the
// server still decides every call (a refused call is shown).
import type { Me } from '../api/types'

export type Action =
  | 'read'
  | 'submit-job'
  | 'control-job'
  | 'change-config'
  | 'create-cluster'
  | 'delete-cluster'
  | 'create-join-token'
  | 'add-host'
  | 'remove-host'
  | 'change-host'
  | 'add-service'
  | 'remove-service'
  | 'manage-users'
  | 'read-audit'

/** Whether `me` may do `action`, as the server listed it; unknown user: no. */
export function can(me: Me | null | undefined, action: Action): boolean {
  return me?.may.includes(action) ?? false
}
