import { describe, expect, it } from 'vitest'
import { mount } from '@vue/test-utils'
import Sparkline from './Sparkline.vue'
import { i18n } from '../i18n'

function draw(values: number[], more: { max?: number } = {}) {
  return mount(Sparkline, { props: { values, width: 100, height: 20, label: 'CPU of h1', ...more }, global: { plugins: [i18n] } })
}

describe('Sparkline', () => {
  it('draws a polyline whose points follow the values, oldest left, 0 at the bottom', () => {
    const w = draw([0, 50, 100])
    const svg = w.get('svg')
    expect(svg.attributes('role')).toBe('img')
    expect(svg.attributes('aria-label')).toBe('CPU of h1')
    expect(w.get('polyline').attributes('points')).toBe('0,20 50,10 100,0')
  })

  it('scales to `max` and keeps values outside 0..max inside the chart', () => {
    const w = draw([10, 20, 40, 80, -5], { max: 40 })
    expect(w.get('polyline').attributes('points')).toBe('0,15 25,10 50,0 75,0 100,20')
  })

  it('shows "no data" for fewer than two points', () => {
    for (const values of [[], [42]]) {
      const w = draw(values)
      expect(w.find('svg').exists()).toBe(false)
      expect(w.text()).toBe('no data')
    }
  })
})
