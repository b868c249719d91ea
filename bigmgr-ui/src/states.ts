// How a state looks (display only): its tag colour and its label in the user's language.
import { useI18n } from 'vue-i18n'

export type TagType = 'default' | 'success' | 'warning' | 'error' | 'info'

export function stateType(state: string): TagType {
  switch (state) {
    case 'ONLINE':
    case 'STARTED':
    case 'SUCCEEDED':
    case 'FINISHED':
    case 'OK':
      return 'success'
    case 'LOST':
    case 'FAILED':
    case 'TIMED_OUT':
    case 'CRITICAL':
      return 'error'
    case 'RUNNING':
    case 'QUEUED':
    case 'CANCELING':
    case 'DRAINING':
    case 'INFO':
      return 'info'
    case 'PAUSED':
    case 'WAITING':
    case 'STOPPED':
    case 'CANCELED':
    case 'WARNING':
      return 'warning'
    default:
      return 'default'
  }
}

/** The label of an API state (`RUNNING`) or audit outcome (`ok`) in the current language. */
export function useStateLabel(): (state: string) => string {
  const i18n = useI18n()
  return (state) => (i18n.te(`state.${state}`) ? i18n.t(`state.${state}`) : state)
}
