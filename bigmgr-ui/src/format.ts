import { useI18n } from 'vue-i18n'
import type { Target } from './api/types'

// Small display helpers (no rules: only how numbers look).
export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '–'
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let v = n
  let i = 0
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024
    i++
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i] ?? ''}`
}

export function percent(n: number | null | undefined): string {
  return n === null || n === undefined || Number.isNaN(n) ? '–' : `${n.toFixed(0)}%`
}

export function dateTime(ms: number | null | undefined): string {
  return ms ? new Date(ms).toLocaleString() : '–'
}

export function duration(from: number | null | undefined, to: number | null | undefined, now = Date.now()): string {
  if (!from) return '–'
  const ms = Math.max(0, (to ?? now) - from)
  if (ms < 1000) return `${ms} ms`
  if (ms < 10000) return `${(ms / 1000).toFixed(1)}s`
  const s = Math.round(ms / 1000)
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`
}

/** The seconds since `ms`, for "n s ago" messages. */
export function ageSeconds(ms: number | null | undefined, now = Date.now()): number | null {
  return ms ? Math.max(0, Math.round((now - ms) / 1000)) : null
}

/** How long ago `ms` was, in the user's language: "12 s ago", "3 min ago", "5 h ago" ("never" without a time). */
export function useAgo(): (ms: number | null | undefined) => string {
  const { t } = useI18n()
  return (ms) => {
    const s = ageSeconds(ms)
    if (s === null) return t('common.never')
    if (s < 60) return t('common.secondsAgo', { n: s })
    if (s < 3600) return t('common.minutesAgo', { n: Math.floor(s / 60) })
    return t('common.hoursAgo', { n: Math.floor(s / 3600) })
  }
}

/** A job's target, short. */
export function targetText(x: Target): string {
  if (typeof x === 'string') return x
  if ('service' in x) return x.service
  if ('component' in x) return `${x.component.service}/${x.component.component}`
  if ('hosts' in x) return x.hosts.join(', ')
  return x.units.map(String).join(', ')
}
