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
  | 'bootstrap-hosts'
  | 'remove-host'
  | 'change-host'
  | 'add-service'
  | 'remove-service'
  | 'apply-spec'
  | 'manage-pipeline'
  | 'control-pipeline'
  | 'manage-users'
  | 'read-audit'

/** Whether `me` may do `action`, as the server listed it; unknown user: no. */
export function can(me: Me | null | undefined, action: Action): boolean {
  return me?.may.includes(action) ?? false
}

/**
 * The action a request (method, path under /api/v1) needs, as far as the console knows: for
 * offering a suggested request's Run or Confirm button only (the server decides). A mutating
 * request it does not know is taken as an operator's (`change-config`), so a viewer is never
 * offered one.
 */
export function actionFor(method: string, path: string): Action {
  const m = method.toUpperCase()
  const p = path.split('?')[0] ?? ''
  if (m === 'GET' || m === 'HEAD') return 'read'
  if (/^\/jobs\/\d+\/(cancel|pause|resume|retry)$/.test(p)) return 'control-job'
  if (/^\/clusters\/[^/]+\/jobs$/.test(p)) return 'submit-job'
  if (/^\/clusters\/[^/]+\/services$/.test(p) && m === 'POST') return 'add-service'
  if (/^\/clusters\/[^/]+\/services\/[^/]+$/.test(p) && m === 'DELETE') return 'remove-service'
  if (/^\/clusters\/[^/]+\/hosts\/bootstrap$/.test(p) && m === 'POST') return 'bootstrap-hosts'
  if (/^\/clusters\/[^/]+\/hosts\/[^/]+$/.test(p)) return m === 'DELETE' ? 'remove-host' : 'change-host'
  if (/^\/(users|tokens)(\/|$)/.test(p)) return 'manage-users'
  // A cluster spec: any role plans one, an admin applies it.
  if (/^\/clusters\/[^/]+\/plan$/.test(p) && m === 'POST') return 'read'
  if (/^\/clusters\/[^/]+\/apply$/.test(p) && m === 'POST') return 'apply-spec'
  if (/^\/clusters\/[^/]+\/pipelines\/[^/]+\/(start|pause|resume|stop|scale)$/.test(p) && m === 'POST') return 'control-pipeline'
  if (/^\/clusters\/[^/]+\/pipelines(\/[^/]+)?$/.test(p)) return 'manage-pipeline'
  return 'change-config'
}
