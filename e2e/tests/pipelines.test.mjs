// Pipelines in the web console, in Chromium against a real `bigmgr serve` and a real agent on
// 127.0.0.2: an admin creates a small pipeline (`files → filter → out`) whose source directory,
// program and sink directory are on the agent's host; an operator opens its page, sees its graph,
// scales the filter, starts it from the page and watches it finish — the state FINISHED with
// what the run said, the graph's processed figures, the run's log — and the sink holds exactly
// the filtered records. A viewer reads the same page with no control. Screenshots go to
// target/ui-screenshots/.

import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { apiOk, launchBrowser, root, shot, startAgent, startServer, waitUntil, signIn } from '../harness.mjs';

let server;
let browser;
let dir;
const agents = [];

before(async () => {
  server = await startServer({ stacks: join(root, 'e2e', 'stacks') });
  browser = await launchBrowser();
  dir = mkdtempSync(join(tmpdir(), 'bigmgr-e2e-pipeline-'));
});

after(async () => {
  await browser?.close();
  for (const a of agents) await a.stop();
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A REST call that must succeed; its body. */
const ok = (method, path, body, token) => apiOk(server, method, path, body, token);

/** A new page of a fresh browser context, signed in with `token` through the login page. */
const signedIn = (token, next) => signIn(browser, server, token, next);

/** The filter's program (docs/pipelines.md's contract: `program <in> <out>`): records with an even value. */
const FILTER = '#!/bin/sh\nset -e\ncat "$1"/* | awk \'$2 % 2 == 0\' > "$2/part"\n';
const RECORDS = 1000;
const PER_BATCH = 100;
const BATCHES = RECORDS / PER_BATCH;

/** Every line the sink wrote under `out`. */
function sinkLines(out) {
  const lines = [];
  const walk = (d) => {
    for (const e of readdirSync(d)) {
      const p = join(d, e);
      if (statSync(p).isDirectory()) walk(p);
      else lines.push(...readFileSync(p, 'utf8').split('\n').filter(Boolean));
    }
  };
  walk(out);
  return lines.sort();
}

/** The text of a node's box in the graph. */
const nodeText = (page, name) => page.getByTestId(`pipeline-node-${name}`).textContent();

test('an operator scales and starts a pipeline from its page and sees it finish with its figures; a viewer sees no control', async () => {
  await ok('POST', '/clusters', { name: 'pipes' });
  const joinToken = await ok('POST', '/clusters/pipes/join-tokens');
  agents.push(startAgent(server, joinToken.token, 'h1', '127.0.0.2'));
  await waitUntil('h1 online', async () => {
    const hosts = await ok('GET', '/clusters/pipes/hosts');
    return hosts.items.some((h) => h.name === 'h1' && h.state === 'ONLINE');
  });

  // The pipeline's files on h1 (the agent runs on this machine): 1 000 records, the filter,
  // the sink's directory.
  const input = join(dir, 'in');
  const out = join(dir, 'out');
  mkdirSync(input);
  mkdirSync(out);
  const records = Array.from({ length: RECORDS }, (_, n) => `r${String(n).padStart(4, '0')} ${(n * 7) % 1009}`);
  writeFileSync(join(input, 'records'), records.join('\n') + '\n');
  const filter = join(dir, 'filter.sh');
  writeFileSync(filter, FILTER);
  chmodSync(filter, 0o755);
  const definition = [
    'name = "evens"',
    '',
    '[sources.files]',
    'kind = "dir"',
    'host = "h1"',
    `path = "${input}"`,
    `records = ${PER_BATCH}`,
    '',
    '[units.filter]',
    `program = "${filter}"`,
    'kind = "non-blocking"',
    'replicas = 2',
    'hosts = ["h1"]',
    'inputs = ["files"]',
    '',
    '[sinks.out]',
    'kind = "dir"',
    'host = "h1"',
    `path = "${out}"`,
    'inputs = ["filter"]',
    '',
  ].join('\n');
  await ok('POST', '/clusters/pipes/pipelines', { definition });

  await ok('POST', '/users', { name: 'otto', role: 'operator' });
  const operatorToken = (await ok('POST', '/users/otto/tokens', { name: 'e2e' })).token;
  await ok('POST', '/users', { name: 'vera', role: 'viewer' });
  const viewerToken = (await ok('POST', '/users/vera/tokens', { name: 'e2e' })).token;

  // The operator's page: CREATED, Start offered (and no Delete: that is an admin's), the graph
  // from the source through the implicit channels to the sink.
  const page = await signedIn(operatorToken, '/clusters/pipes/pipelines/evens');
  await page.locator('[data-testid="pipeline-state"][data-state="CREATED"]').waitFor();
  await page.getByTestId('pipeline-start').waitFor();
  assert.equal(await page.getByTestId('pipeline-delete').count(), 0, 'an operator deletes nothing');
  for (const n of ['files', 'files->filter', 'filter', 'filter->out', 'out']) {
    await page.getByTestId(`pipeline-node-${n}`).waitFor();
  }
  assert.equal(await page.locator('[data-testid="pipeline-graph"] path.edge').count(), 4);
  assert.match(await nodeText(page, 'filter'), /unit · replicas 2/);
  assert.equal(await page.getByTestId('pipeline-scale-out').count(), 0, 'a sink is not scaled');

  // Scaled before it runs: the page shows the replicas the server kept.
  await page.getByTestId('pipeline-scale-replicas-filter').locator('input').fill('3');
  await page.getByTestId('pipeline-scale-filter').click();
  await page.getByTestId('pipeline-replicas-filter').filter({ hasText: /^3$/ }).waitFor();
  assert.deepEqual((await ok('GET', '/clusters/pipes/pipelines/evens')).replicas, { filter: 3 });
  await shot(page, 'pipeline-created');

  // Started from the page: it runs and finishes; the page follows it without a reload.
  await page.getByTestId('pipeline-start').click();
  await page.locator('[data-testid="pipeline-state"][data-state="FINISHED"]').waitFor({ timeout: 90000 });
  assert.equal((await page.getByTestId('pipeline-message').innerText()).trim(), 'every batch was processed');
  await page.getByTestId('pipeline-node-out').filter({ hasText: `processed ${BATCHES}` }).waitFor();
  assert.match(await nodeText(page, 'files'), new RegExp(`recorded ${BATCHES}`));
  assert.match(await nodeText(page, 'filter'), new RegExp(`processed ${BATCHES} · \\d+ per min`));
  assert.match(await nodeText(page, 'filter'), /waiting 0 · leased 0/);
  assert.match(await page.getByTestId('pipeline-node-filter').getAttribute('aria-label'), new RegExp(`processed ${BATCHES}`));
  await page.getByTestId('pipeline-logs').filter({ hasText: 'run ended: every batch was processed' }).waitFor();
  // Start again is what a finished pipeline offers.
  await page.getByTestId('pipeline-start').waitFor();
  assert.equal(await page.getByTestId('pipeline-pause').count(), 0);
  await shot(page, 'pipeline-finished');
  await page.context().close();

  // Exactly the records with an even value, each once.
  const want = records.filter((r) => Number(r.split(' ')[1]) % 2 === 0).sort();
  assert.deepEqual(sinkLines(out), want);

  // A viewer reads the same page: the graph and its figures, no control.
  const viewer = await signedIn(viewerToken, '/clusters/pipes/pipelines/evens');
  await viewer.locator('[data-testid="pipeline-state"][data-state="FINISHED"]').waitFor();
  await viewer.getByTestId('pipeline-node-out').filter({ hasText: `processed ${BATCHES}` }).waitFor();
  assert.equal(await viewer.getByTestId('pipeline-controls').count(), 0, 'a viewer gets no run control');
  assert.equal(await viewer.getByTestId('pipeline-start').count(), 0);
  assert.equal(await viewer.getByTestId('pipeline-scale-filter').count(), 0, 'a viewer scales nothing');
  assert.equal(await viewer.getByTestId('pipeline-delete').count(), 0);
  await shot(viewer, 'pipeline-viewer');
  // And the server refuses what the page does not offer.
  const refused = await server.api('POST', '/clusters/pipes/pipelines/evens/start', undefined, viewerToken);
  assert.equal(refused.status, 403);
  await viewer.context().close();
});
