import { createApp } from 'vue'
import { createPinia } from 'pinia'
import App from './App.vue'
import { i18n } from './i18n'
import { START_LOCATION } from 'vue-router'
import { makeRouter } from './router'
import { configureClient } from './api/client'
import { useAssistant } from './stores/assistant'
import { useAuth } from './stores/auth'

const app = createApp(App)
const pinia = createPinia()
app.use(pinia)
const router = makeRouter()
const auth = useAuth(pinia)

configureClient({
  getToken: () => auth.token,
  onUnauthorized: () => {
    auth.expire()
    // Whoever signs in next sees none of the expired user's conversations.
    useAssistant(pinia).reset()
    const here = router.currentRoute.value
    // Before the first navigation the guard sends the user to /login?next=<the URL opened>.
    if (here !== START_LOCATION && here.name !== 'login') {
      void router.push({ name: 'login', query: { next: here.fullPath } })
    }
  },
})

app.use(router)
app.use(i18n)
// Who the user is, before the first page renders its controls.
void auth
  .loadMe()
  .catch(() => undefined)
  .finally(() => {
    app.mount('#app')
  })
