// Suggested requests (the advisor's actions, the assistant's proposals): shown exactly as they
// will be sent before anyone runs them, and what they answered, read for the jobs they made.
import { API_BASE } from './api/client'
import type { JobView, SuggestedAction } from './api/types'

/** The request as it goes over the wire: `POST /api/v1/jobs/12/retry`, then the JSON body. */
export function requestText(a: SuggestedAction): string {
  const line = `${a.method.toUpperCase()} ${API_BASE}${a.path}`
  return a.body === undefined || a.body === null ? line : `${line}\n${JSON.stringify(a.body, null, 2)}`
}

function isJob(v: unknown): v is JobView {
  if (typeof v !== 'object' || v === null) return false
  const j = v as Partial<JobView>
  return typeof j.id === 'number' && typeof j.command === 'string' && typeof j.state === 'string'
}

/** The jobs an answer holds: a job (submit, retry…) or a list of them (restart-stale). */
export function jobsIn(answer: unknown): JobView[] {
  if (isJob(answer)) return [answer]
  return Array.isArray(answer) ? answer.filter(isJob) : []
}
