// Test data: `GET /api/v1/me` as the server answers for each role (its rule table is
// bigmgr-core/src/auth.rs; the server's tests check these answers).
import type { Me, Role } from '../api/types'

const VIEWER = ['read', 'login', 'manage-own-account']
const OPERATOR = [...VIEWER, 'submit-job', 'control-job', 'change-config', 'control-pipeline']
const ADMIN = [
  'agent-register',
  ...OPERATOR,
  'create-cluster',
  'delete-cluster',
  'create-join-token',
  'add-host',
  'bootstrap-hosts',
  'remove-host',
  'change-host',
  'add-service',
  'remove-service',
  'apply-spec',
  'manage-pipeline',
  'manage-users',
  'read-audit',
]

/** The `/me` answer of user `name` with `role`. */
export function meAs(role: Role, name = 'u'): Me {
  const may = { viewer: VIEWER, operator: OPERATOR, admin: ADMIN }[role]
  return { name, role, may }
}
