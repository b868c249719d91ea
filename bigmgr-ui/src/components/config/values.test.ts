import { describe, expect, it } from 'vitest'
import type { StackConfigView } from '../../api/types'
import { changedFromDefault, isEmpty, shownValue, valueText, withEdit, withoutEdit } from './values'

const values = { 'a.conf': { x: 1 } }
const schema: StackConfigView[] = [
  {
    name: 'a.conf',
    path: 'a',
    properties: [
      { name: 'x', type: 'int', default: 5, description: '', required: false, secret: false },
      { name: 'y', type: 'string', default: 'hi', description: '', required: false, secret: false },
    ],
  },
]

describe('config values', () => {
  it('keeps a merge patch of what changed from the current values', () => {
    let p = withEdit(values, {}, 'a.conf', 'x', 2)
    expect(p).toEqual({ 'a.conf': { x: 2 } })
    expect(shownValue(values, p, 'a.conf', 'x')).toBe(2)
    // Back to the current value: no change at all.
    p = withEdit(values, p, 'a.conf', 'x', 1)
    expect(isEmpty(p)).toBe(true)
    // Back to the default of a property the current version sets: null removes it.
    p = withEdit(values, p, 'a.conf', 'x', undefined)
    expect(p).toEqual({ 'a.conf': { x: null } })
    expect(shownValue(values, p, 'a.conf', 'x')).toBeUndefined()
    // Back to the default of one it does not set: nothing to send.
    p = withEdit(values, withEdit(values, p, 'a.conf', 'y', 'yo'), 'a.conf', 'y', undefined)
    expect(p).toEqual({ 'a.conf': { x: null } })
    expect(withoutEdit(p, 'a.conf', 'x')).toEqual({})
  })

  it('sends a new service only the values that differ from their defaults', () => {
    expect(changedFromDefault({ 'a.conf': { x: 5, y: 'yo' } }, schema)).toEqual({ 'a.conf': { y: 'yo' } })
    expect(changedFromDefault({ 'a.conf': { x: 5 } }, schema)).toEqual({})
  })

  it('masks secrets and marks absent values', () => {
    expect(valueText('pw', true)).toBe('********')
    expect(valueText(undefined)).toBe('–')
    expect(valueText(3)).toBe('3')
    expect(valueText(false)).toBe('false')
  })
})
