import { describe, expect, it } from 'vitest'
import { mount } from '@vue/test-utils'
import { nextTick, reactive } from 'vue'
import StageList from './StageList.vue'
import { i18n } from '../i18n'
import type { StageView } from '../api/types'

function stages(): StageView[] {
  return [
    { id: 1, name: 'INSTALL a', component: 'a', command: 'install', state: 'SUCCEEDED', after: [], tasks: [{ id: 1, host: 'h1', state: 'SUCCEEDED', attempt: 1 }] },
    { id: 2, name: 'INSTALL b', component: 'b', command: 'install', state: 'RUNNING', after: [], tasks: [{ id: 2, host: 'h2', state: 'RUNNING', attempt: 1 }] },
    { id: 3, name: 'START a', component: 'a', command: 'start', state: 'PENDING', after: [1, 2], tasks: [{ id: 3, host: 'h1', state: 'PENDING', attempt: 1 }] },
  ]
}

describe('StageList', () => {
  it('draws stages in columns by their `after`', () => {
    const w = mount(StageList, { props: { stages: stages() }, global: { plugins: [i18n] } })
    const cols = w.findAll('.col')
    expect(cols.map((c) => c.findAll('[data-testid^="stage-"][role="listitem"]').map((s) => s.attributes('data-testid')))).toEqual([
      ['stage-1', 'stage-2'],
      ['stage-3'],
    ])
    expect(w.get('[data-testid="stage-3"]').attributes('title')).toContain('INSTALL a, INSTALL b')
  })

  it('re-renders as live events change states, and selects with a keyboard-reachable button', async () => {
    const s = reactive(stages())
    const w = mount(StageList, { props: { stages: s }, global: { plugins: [i18n] } })
    expect(w.get('[data-testid="stage-state-3"]').text()).toBe('PENDING')
    const third = s[2]
    if (!third) throw new Error('no stage 3')
    third.state = 'RUNNING'
    const task = third.tasks[0]
    if (task) task.state = 'RUNNING'
    await nextTick()
    expect(w.get('[data-testid="stage-3"]').attributes('data-state')).toBe('RUNNING')
    expect(w.get('[data-testid="stage-3"] .counts').text()).toBe('1 RUNNING')
    const button = w.get('[data-testid="stage-3"]')
    expect(button.element.tagName).toBe('BUTTON')
    await button.trigger('click')
    expect(w.emitted('select')).toEqual([[3]])
  })
})
