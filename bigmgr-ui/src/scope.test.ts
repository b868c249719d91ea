import { describe, expect, it } from 'vitest'
import { targetOf } from './scope'

describe('targetOf', () => {
  it('targets the service, a component or the ticked units', () => {
    expect(targetOf('service', 'zk', [1])).toEqual({ service: 'zk' })
    expect(targetOf('component:zookeeper_server', 'zk', [])).toEqual({ component: { service: 'zk', component: 'zookeeper_server' } })
    expect(targetOf('units', 'zk', [3, 5])).toEqual({ units: [3, 5] })
  })
})
