/// <reference types="vitest/config" />
import { defineConfig } from 'vite'
import vue from '@vitejs/plugin-vue'

// The dev server proxies the REST API to a local `bigmgr serve` (default port 7070; set
// BIGMGR_API to point elsewhere, e.g. a quickstart on 127.0.0.1:7171).
const api = process.env.BIGMGR_API ?? 'http://127.0.0.1:7070'

export default defineConfig({
  plugins: [vue()],
  server: {
    proxy: {
      '/api': { target: api, changeOrigin: false },
    },
  },
  test: {
    environment: 'happy-dom',
    include: ['src/**/*.test.ts'],
  },
})
