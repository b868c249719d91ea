import { describe, expect, it } from 'vitest'
import en from './en'
import zh from './zh-CN'

function keys(o: object, prefix = ''): string[] {
  return Object.entries(o).flatMap(([k, v]) => (typeof v === 'object' && v !== null ? keys(v as object, `${prefix}${k}.`) : [`${prefix}${k}`]))
}

describe('messages', () => {
  it('has every English key in Chinese, with the same placeholders', () => {
    expect(keys(zh).sort()).toEqual(keys(en).sort())
    const get = (o: object, k: string): string => k.split('.').reduce<unknown>((x, p) => (x as Record<string, unknown>)[p], o) as string
    for (const k of keys(en)) {
      const ph = (s: string): string[] => [...new Set(s.match(/\{\w+\}/g) ?? [])].sort()
      expect(ph(get(zh, k)), k).toEqual(ph(get(en, k)))
    }
  })
})
