// The tag colour of a state (display only).
export type TagType = 'default' | 'success' | 'warning' | 'error' | 'info'

export function stateType(state: string): TagType {
  switch (state) {
    case 'ONLINE':
    case 'STARTED':
    case 'SUCCEEDED':
      return 'success'
    case 'LOST':
    case 'FAILED':
    case 'TIMED_OUT':
      return 'error'
    case 'RUNNING':
    case 'QUEUED':
    case 'CANCELING':
      return 'info'
    case 'PAUSED':
    case 'WAITING':
    case 'STOPPED':
    case 'CANCELED':
      return 'warning'
    default:
      return 'default'
  }
}
