// What a role may do, for hiding and disabling controls only: the server decides (a refused
// call is still shown). The table mirrors the server's actions (bigmgr-core/src/auth.rs).
import type { Me, Role } from '../api/types'

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

const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 }

export const REQUIRED_ROLE: Record<Action, Role> = {
  read: 'viewer',
  'submit-job': 'operator',
  'control-job': 'operator',
  'change-config': 'operator',
  'create-cluster': 'admin',
  'delete-cluster': 'admin',
  'create-join-token': 'admin',
  'add-host': 'admin',
  'remove-host': 'admin',
  'change-host': 'admin',
  'add-service': 'admin',
  'remove-service': 'admin',
  'manage-users': 'admin',
  'read-audit': 'admin',
}

/** Whether `me` may do `action`; unknown user or role: no. */
export function can(me: Me | null | undefined, action: Action): boolean {
  if (!me) return false
  const have = RANK[me.role] as number | undefined
  if (have === undefined) return false
  return have >= RANK[REQUIRED_ROLE[action]]
}
