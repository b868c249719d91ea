// The user's display preferences, kept in localStorage: dark mode and language.
import { defineStore } from 'pinia'
import { ref, watch } from 'vue'

export type Locale = 'en' | 'zh-CN'
const DARK_KEY = 'bigmgr.dark'
const LOCALE_KEY = 'bigmgr.locale'

function read(key: string): string | null {
  try {
    return localStorage.getItem(key)
  } catch {
    return null
  }
}

function write(key: string, value: string): void {
  try {
    localStorage.setItem(key, value)
  } catch {
    // no storage: the choice lasts for this page
  }
}

export function initialLocale(): Locale {
  const saved = read(LOCALE_KEY)
  if (saved === 'en' || saved === 'zh-CN') return saved
  return typeof navigator !== 'undefined' && navigator.language.toLowerCase().startsWith('zh') ? 'zh-CN' : 'en'
}

export const usePrefs = defineStore('prefs', () => {
  const dark = ref(read(DARK_KEY) === '1')
  const locale = ref<Locale>(initialLocale())
  watch(dark, (d) => {
    write(DARK_KEY, d ? '1' : '0')
  })
  watch(locale, (l) => {
    write(LOCALE_KEY, l)
  })
  return { dark, locale }
})
