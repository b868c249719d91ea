// Routes are deep links; every page but /login needs a token, and a 401 anywhere comes back
// here as /login?next=<where you were>.
import { createRouter, createWebHistory, type RouteLocationNormalized, type Router } from 'vue-router'
import { useAuth } from './stores/auth'

export function makeRouter(): Router {
  const router = createRouter({
    history: createWebHistory(),
    routes: [
      { path: '/login', name: 'login', component: () => import('./views/LoginView.vue'), meta: { public: true } },
      { path: '/', name: 'overview', component: () => import('./views/OverviewView.vue') },
      { path: '/clusters/:cluster', redirect: (to) => ({ name: 'hosts', params: to.params }) },
      { path: '/clusters/:cluster/hosts', name: 'hosts', component: () => import('./views/HostsView.vue') },
      { path: '/clusters/:cluster/hosts/bootstrap', name: 'hosts-bootstrap', component: () => import('./views/BootstrapHostsView.vue') },
      { path: '/clusters/:cluster/hosts/:host', name: 'host', component: () => import('./views/HostView.vue') },
      { path: '/clusters/:cluster/services', name: 'services', component: () => import('./views/ServicesView.vue') },
      { path: '/clusters/:cluster/services/new', name: 'add-service', component: () => import('./views/AddServiceView.vue') },
      { path: '/clusters/:cluster/services/:service', name: 'service', component: () => import('./views/ServiceView.vue') },
      {
        path: '/clusters/:cluster/services/:service/configs',
        name: 'service-configs',
        component: () => import('./views/ServiceConfigsView.vue'),
      },
      { path: '/clusters/:cluster/configs', name: 'configs', component: () => import('./views/ConfigsView.vue') },
      { path: '/clusters/:cluster/relations', name: 'relations', component: () => import('./views/RelationsView.vue') },
      { path: '/clusters/:cluster/jobs', name: 'jobs', component: () => import('./views/JobsView.vue') },
      { path: '/clusters/:cluster/alerts', name: 'alerts', component: () => import('./views/AlertsView.vue') },
      { path: '/clusters/:cluster/spec', name: 'spec', component: () => import('./views/SpecView.vue') },
      { path: '/clusters/:cluster/pipelines', name: 'pipelines', component: () => import('./views/PipelinesView.vue') },
      { path: '/clusters/:cluster/pipelines/new', name: 'pipeline-new', component: () => import('./views/NewPipelineView.vue') },
      { path: '/clusters/:cluster/pipelines/:pipeline', name: 'pipeline', component: () => import('./views/PipelineView.vue') },
      { path: '/stacks/:stack?/:service?', name: 'stacks', component: () => import('./views/StacksView.vue') },
      { path: '/admin/users/:user?', name: 'users', component: () => import('./views/UsersView.vue') },
      { path: '/admin/audit', name: 'audit', component: () => import('./views/AuditView.vue') },
      { path: '/jobs/:id(\\d+)', name: 'job', component: () => import('./views/JobView.vue') },
      { path: '/:rest(.*)*', name: 'not-found', component: () => import('./views/NotFoundView.vue'), meta: { public: true } },
    ],
  })
  router.beforeEach((to) => {
    const auth = useAuth()
    if (to.meta.public !== true && !auth.signedIn) {
      return { name: 'login', query: { next: to.fullPath } }
    }
    return true
  })
  return router
}

/** Where to go after login: `next` if it is a path of this app, else the overview. */
export function nextPath(route: RouteLocationNormalized): string {
  const n = route.query.next
  return typeof n === 'string' && n.startsWith('/') && !n.startsWith('//') ? n : '/'
}
