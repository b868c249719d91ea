// The clusters the header's picker offers, and the one last picked.
import { defineStore } from 'pinia'
import { ref } from 'vue'
import { ApiError, api } from '../api/client'
import type { ClusterView } from '../api/types'

const KEY = 'bigmgr.cluster'

export const useClusters = defineStore('clusters', () => {
  const list = ref<ClusterView[]>([])
  const error = ref<ApiError | null>(null)
  let saved: string | null = null
  try {
    saved = localStorage.getItem(KEY)
  } catch {
    saved = null
  }
  const current = ref<string | null>(saved)

  async function load(): Promise<void> {
    try {
      list.value = await api.clusters()
      error.value = null
      if (!current.value || !list.value.some((c) => c.name === current.value)) {
        current.value = list.value[0]?.name ?? null
      }
    } catch (e) {
      if (e instanceof ApiError) error.value = e
      else throw e
    }
  }

  function pick(name: string): void {
    current.value = name
    try {
      localStorage.setItem(KEY, name)
    } catch {
      // no storage
    }
  }

  return { list, error, current, load, pick }
})
