import { describe, expect, it } from 'vitest'
import doc from '../../docs/pipelines.md?raw'
import { EXAMPLE_PIPELINE } from './pipeline'

describe('EXAMPLE_PIPELINE', () => {
  it('is the first example of docs/pipelines.md, as written there', () => {
    expect(/```toml\n([\s\S]*?)```/.exec(doc)?.[1]).toBe(EXAMPLE_PIPELINE)
  })
})
