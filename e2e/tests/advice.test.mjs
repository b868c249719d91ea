// The advisor in the web console, in Chromium against a real `bigmgr serve` and a real agent
// on 127.0.0.2: a unit's start calls a tool that is not installed, so its job fails for real;
// the overview's advice says so with the log line as evidence and suggests retrying the job;
// "Run" shows the request exactly, runs it only after "Run it", and links the job it retried
// (whose failed task runs again); the failed job's page explains the failure; a viewer reads
// the same advice but is offered nothing to run. Screenshots go to target/ui-screenshots/.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { apiOk, launchBrowser, root, shot, startAgent, startServer, waitUntil, signIn } from '../harness.mjs';

let server;
let browser;
const agents = [];

before(async () => {
  server = await startServer({ stacks: join(root, 'e2e', 'stacks') });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  for (const a of agents) await a.stop();
  await server?.stop();
});

/** A REST call that must succeed; its body. */
const ok = (method, path, body, token) => apiOk(server, method, path, body, token);

/** A new page of a fresh browser context, signed in with `token` through the login page. */
const signedIn = (token, next) => signIn(browser, server, token, next);

/** The job's tasks, flattened. */
async function tasksOf(id) {
  return (await ok('GET', `/jobs/${id}`)).stages.flatMap((s) => s.tasks);
}

test('the advisor explains a real failure; its suggested retry runs only after a confirm; a viewer only reads', async () => {
  await ok('POST', '/clusters', { name: 'adv' });
  const join = await ok('POST', '/clusters/adv/join-tokens');
  agents.push(startAgent(server, join.token, 'h1', '127.0.0.2'));
  await waitUntil('h1 online', async () => {
    const hosts = await ok('GET', '/clusters/adv/hosts');
    return hosts.items.some((h) => h.name === 'h1' && h.state === 'ONLINE');
  });
  await ok('POST', '/clusters/adv/services', { name: 'needy', stack: 'e2e', service: 'needy', placement: { needy_server: ['h1'] } });
  const { id } = await ok('POST', '/clusters/adv/jobs', { command: 'start', target: { service: 'needy' } });
  await waitUntil('the start job to fail', async () => (await ok('GET', `/jobs/${id}`)).state === 'FAILED', 60000);
  const [failedTask] = (await tasksOf(id)).filter((t) => t.state === 'FAILED');
  assert.equal(failedTask.attempt, 1);

  // The overview: the finding, its evidence (the log line) and the request it suggests.
  const page = await signedIn(server.token, '/');
  const card = page.getByTestId('overview-cluster-adv');
  const finding = card.getByTestId('finding-task.missing_command');
  await finding.waitFor({ timeout: 30000 });
  assert.equal(await finding.getAttribute('data-severity'), 'CRITICAL');
  assert.match(await finding.getByTestId('finding-evidence').innerText(), /no-such-tool-for-bigmgr/);
  assert.match(await finding.innerText(), new RegExp(`POST /jobs/${id}/retry`));
  await shot(page, 'advice-overview');

  // "Run" shows the request exactly; nothing runs until "Run it".
  await finding.getByTestId('action-run').click();
  assert.equal(await finding.getByTestId('action-request').innerText(), `POST /api/v1/jobs/${id}/retry`);
  await shot(page, 'advice-confirm');
  assert.equal((await tasksOf(id)).find((t) => t.id === failedTask.id).attempt, 1, 'nothing ran before the confirm');
  await finding.getByTestId('action-confirm-run').click();
  const link = card.getByTestId(`advice-job-${id}`);
  await link.waitFor();
  assert.match(await card.getByTestId('advice-result').innerText(), new RegExp(`Ran POST /api/v1/jobs/${id}/retry\\.`));
  // The retry ran the failed task again (and it fails again: the tool is still missing).
  await waitUntil('the retried task to run again', async () => {
    const t = (await tasksOf(id)).find((x) => x.id === failedTask.id);
    return t.attempt === 2;
  }, 30000);

  // Its job page: "Explain this failure" reads the advice about this job.
  await link.click();
  await page.waitForURL((u) => u.pathname === `/jobs/${id}`);
  await page.getByTestId('job-state').filter({ hasText: 'FAILED' }).waitFor({ timeout: 60000 });
  await page.getByTestId('job-explain').click();
  const explained = page.getByTestId('finding-task.missing_command');
  await explained.waitFor();
  assert.match(await explained.getByTestId('finding-evidence').innerText(), /no-such-tool-for-bigmgr/);
  await shot(page, 'advice-job');
  await page.context().close();

  // A viewer reads the same advice, with the request it would be, and no Run.
  await ok('POST', '/users', { name: 'vera', role: 'viewer' });
  const viewerToken = (await ok('POST', '/users/vera/tokens', { name: 'e2e' })).token;
  const viewer = await signedIn(viewerToken, '/');
  const seen = viewer.getByTestId('overview-cluster-adv').getByTestId('finding-task.missing_command');
  await seen.waitFor({ timeout: 30000 });
  assert.match(await seen.innerText(), new RegExp(`POST /jobs/${id}/retry`));
  assert.equal(await viewer.getByTestId('action-run').count(), 0, 'a viewer is offered no Run');
  await shot(viewer, 'advice-viewer');
  await viewer.context().close();
});
