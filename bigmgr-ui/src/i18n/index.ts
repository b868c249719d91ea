import { createI18n } from 'vue-i18n'
import en from './en'
import zh from './zh-CN'
import { initialLocale } from '../stores/prefs'

export type Messages = typeof en

export const i18n = createI18n<[Messages], 'en' | 'zh-CN', false>({
  // The Composition API (useI18n); the option goes away with v12, where it is the only mode.
  // eslint-disable-next-line @typescript-eslint/no-deprecated
  legacy: false,
  locale: initialLocale(),
  fallbackLocale: 'en',
  messages: { en, 'zh-CN': zh },
})
