// Test data: a cluster spec's plan with nothing in it (tests add what they need).
import type { Plan } from '../api/types'

export function emptyPlan(): Plan {
  return {
    create_cluster: false,
    hosts_to_add: [],
    services_to_add: [],
    services_to_remove: [],
    units_to_add: [],
    units_to_remove: [],
    configs: [],
    relations_to_add: [],
    relations_to_remove: [],
    policies: [],
    jobs: [],
    problems: [],
    kept: [],
  }
}
