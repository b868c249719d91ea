// What a service card's commands act on: the whole service instance, one of its components, or
// the units an operator ticked — as the job's target. The server plans the job for that target.
import type { Target } from './api/types'

/** `service`, `component:<name>` or `units`. */
export type Scope = string

/** The job target of `scope` on service instance `service`, with `units` ticked. */
export function targetOf(scope: Scope, service: string, units: readonly number[]): Target {
  if (scope === 'units') return { units: [...units] }
  if (scope.startsWith('component:')) return { component: { service, component: scope.slice('component:'.length) } }
  return { service }
}
