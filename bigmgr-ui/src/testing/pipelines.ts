// Test data: pipelines as the server answers for them — docs/pipelines.md's first example
// (`files → filter → sort → out`, channels inserted between) with its status and log.
import type { PipelineLogLine, PipelineNode, PipelineState, PipelineStatus, PipelineView } from '../api/types'
import { EXAMPLE_PIPELINE } from '../pipeline'

/** Pipeline `name` (the docs' example renamed) in `state`, created `ageMs` ago. */
export function pipelineView(id: number, name: string, state: PipelineState, ageMs = 5 * 60_000, extra: Partial<PipelineView> = {}): PipelineView {
  return {
    id,
    name,
    author: 'admin',
    created_at: Date.now() - ageMs,
    state,
    definition: EXAMPLE_PIPELINE.replace('name = "sorted"', `name = "${name}"`),
    replicas: {},
    ...extra,
  }
}

/** A node with no batches yet, as the status lists it. */
export function statusNode(name: string, kind: PipelineNode['kind'], extra: Partial<PipelineNode> = {}): PipelineNode {
  return {
    name,
    kind,
    ...(kind === 'unit' ? { replicas: 1 } : {}),
    ...(kind === 'channel' ? { limit: 64 } : {}),
    waiting: 0,
    leased: 0,
    processed: 0,
    processed_last_minute: 0,
    recorded: 0,
    ready: true,
    ...extra,
  }
}

/**
 * The example's status mid-run: the source recorded 100 batches; the filter (3 replicas) has a
 * backlog of 4, 2 leased, 10 processed, 5 in the last minute; the channel before the blocking
 * sort holds its limit of 12 (not ready); the sink wrote 7.
 */
export function sortedStatus(pipeline: PipelineView, running_here = true): PipelineStatus {
  return {
    pipeline,
    nodes: [
      statusNode('files', 'source', { recorded: 100 }),
      statusNode('files->filter', 'channel', { waiting: 4, leased: 2, processed: 10 }),
      statusNode('filter', 'unit', { replicas: 3, waiting: 4, leased: 2, processed: 10, processed_last_minute: 5 }),
      statusNode('filter->sort', 'channel', { limit: 12, waiting: 12, processed: 0, ready: false }),
      statusNode('sort', 'unit', { replicas: 1, waiting: 12 }),
      statusNode('sort->out', 'channel', { processed: 7 }),
      statusNode('out', 'sink', { processed: 7 }),
    ].sort((a, b) => (a.name < b.name ? -1 : 1)),
    edges: [
      ['files', 'files->filter'],
      ['files->filter', 'filter'],
      ['filter', 'filter->sort'],
      ['filter->sort', 'sort'],
      ['sort', 'sort->out'],
      ['sort->out', 'out'],
    ],
    running_here,
  }
}

/** Log lines `texts`, a second apart from `from`, oldest first. */
export function logLines(texts: string[], from = Date.UTC(2026, 11, 6, 10, 0, 0)): { lines: PipelineLogLine[] } {
  return { lines: texts.map((line, i) => ({ at: from + i * 1000, line })) }
}
