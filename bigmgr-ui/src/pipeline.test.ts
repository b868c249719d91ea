import { describe, expect, it } from 'vitest'
import doc from '../../docs/pipelines.md?raw'
import { EXAMPLE_PIPELINE, blockingUnits } from './pipeline'

describe('EXAMPLE_PIPELINE', () => {
  it('is the first example of docs/pipelines.md, as written there', () => {
    expect(/```toml\n([\s\S]*?)```/.exec(doc)?.[1]).toBe(EXAMPLE_PIPELINE)
  })
})

describe('blockingUnits', () => {
  it('reads the blocking units of the docs\' example', () => {
    expect([...blockingUnits(EXAMPLE_PIPELINE)]).toEqual(['sort'])
  })

  it('reads tables, dotted keys, inline tables and quoted names, and skips comments and strings', () => {
    const text = [
      'name = "p"',
      'units.dotted.kind = "blocking"',
      '[units."quoted unit"]',
      "kind = 'blocking'   # once",
      '[units.streaming]',
      'kind = "non-blocking"',
      '# kind = "blocking"',
      'note = """',
      '[units.fake]',
      'kind = "blocking"',
      '"""',
      '[units]',
      'inline = { program = "/bin/x", kind = "blocking", inputs = ["a"] }',
      'other = { program = "/bin/kind", inputs = ["a"] }',
      '[sinks.out]',
      'kind = "dir"',
      '[channels.dc]',
      'kind = "blocking"',
    ].join('\n')
    expect([...blockingUnits(text)].sort()).toEqual(['dotted', 'inline', 'quoted unit'])
  })
})
