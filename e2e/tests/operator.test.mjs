// What an operator does in the web console, in Chromium against a real `bigmgr serve` with
// real agents on 127.0.0.2 and 127.0.0.3: signs in with a token and comes back to the page
// they asked for, watches the hosts come online, follows a deploy live, cancels a long job;
// a viewer finds no mutating control and a forged mutating call is refused. Every page is
// screenshotted into target/ui-screenshots/.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { launchBrowser, root, shot, startAgent, startServer, waitUntil } from '../harness.mjs';

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
async function ok(method, path, body) {
  const res = await server.api(method, path, body);
  assert.ok(res.status >= 200 && res.status < 300, `${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

/** A new page of a fresh browser context, signed in with `token` through the login page. */
async function signedIn(token, next) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  await page.goto(`${server.url}${next}`);
  await page.waitForURL(/\/login\?next=/);
  await page.getByTestId('login-mode-token').click();
  await page.getByTestId('login-token').locator('input').fill(token);
  await page.getByTestId('login-token-submit').click();
  await page.waitForURL((u) => u.pathname === next.split('?')[0]);
  return page;
}

test('an operator signs in, watches hosts come online, follows a deploy live and cancels a long job', async () => {
  await ok('POST', '/clusters', { name: 'demo' });
  const { token: join } = await ok('POST', '/clusters/demo/join-tokens', {});

  // Signed out, a deep link goes to the login page, which says how to sign in.
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const anon = await context.newPage();
  await anon.goto(`${server.url}/clusters/demo/hosts`);
  await anon.waitForURL((u) => u.pathname === '/login' && u.searchParams.get('next') === '/clusters/demo/hosts');
  await anon.getByTestId('login-card').waitFor();
  await shot(anon, 'login');
  await context.close();

  const page = await signedIn(server.token, '/clusters/demo/hosts');
  await page.getByTestId('hosts-page').waitFor();
  // The agents join while the page is open: the list shows them without a reload.
  agents.push(startAgent(server, join, 'h1', '127.0.0.2'));
  agents.push(startAgent(server, join, 'h2', '127.0.0.3'));
  for (const h of ['h1', 'h2']) {
    await page.getByTestId(`host-state-${h}`).filter({ hasText: 'ONLINE' }).waitFor({ timeout: 30000 });
  }
  await shot(page, 'hosts');

  await page.getByTestId('host-link-h1').click();
  await page.getByTestId('host-page').waitFor();
  await page.getByTestId('host-facts').waitFor();
  await shot(page, 'host');

  await page.goto(`${server.url}/`);
  await page.getByTestId('overview-cluster-demo').waitFor();
  await shot(page, 'overview');

  // A deploy, followed live: stage states move and the task's log lines arrive.
  await ok('POST', '/clusters/demo/services', {
    name: 'hello',
    stack: 'demo',
    service: 'hello',
    placement: { hello_server: ['h1', 'h2'] },
  });
  const deploy = await ok('POST', '/clusters/demo/jobs', { command: 'deploy', target: { service: 'hello' } });
  await page.goto(`${server.url}/jobs/${deploy.id}`);
  await page.getByTestId('job-page').waitFor();
  await page.getByTestId('job-state').filter({ hasText: 'SUCCEEDED' }).waitFor({ timeout: 60000 });
  await shot(page, 'job-deploy');

  // A long job: its log lines arrive while it runs, and cancel stops it.
  await ok('POST', '/clusters/demo/services', {
    name: 'sleeper',
    stack: 'e2e',
    service: 'sleeper',
    placement: { sleeper_server: ['h2'] },
  });
  const long = await ok('POST', '/clusters/demo/jobs', { command: 'work', target: { service: 'sleeper' } });
  await page.goto(`${server.url}/jobs/${long.id}`);
  await page.getByTestId('job-state').filter({ hasText: 'RUNNING' }).waitFor({ timeout: 30000 });
  const detail = await ok('GET', `/jobs/${long.id}`);
  const task = detail.stages.flatMap((s) => s.tasks)[0];
  await page.getByTestId(`task-log-${task.id}`).click();
  await page.getByTestId('log-lines').filter({ hasText: 'working 3' }).waitFor({ timeout: 30000 });
  await shot(page, 'job-live-log');
  await page.keyboard.press('Escape');
  await page.getByTestId('log-lines').waitFor({ state: 'hidden' });
  const cancel = page.getByTestId('job-cancel');
  assert.equal(await cancel.isEnabled(), true, 'cancel is enabled while the job runs');
  await cancel.click();
  await page.getByTestId('job-state').filter({ hasText: 'CANCELED' }).waitFor({ timeout: 30000 });
  assert.equal(await page.getByTestId('job-cancel').isEnabled(), false, 'cancel is disabled once canceled');
  assert.equal(await page.getByTestId('job-retry').isEnabled(), true, 'retry is enabled once canceled');
  await shot(page, 'job-canceled');
  const after = await ok('GET', `/jobs/${long.id}`);
  assert.equal(after.state, 'CANCELED');
  await page.context().close();
});

test('a viewer finds no mutating control, and a forged mutating call is refused', async () => {
  await ok('POST', '/users', { name: 'vic', role: 'viewer', password: 'viewer-pass-1' });
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  await page.goto(`${server.url}/clusters/demo/hosts`);
  await page.waitForURL(/\/login/);
  await page.getByTestId('login-name').locator('input').fill('vic');
  await page.getByTestId('login-password').locator('input').fill('viewer-pass-1');
  await page.getByTestId('login-submit').click();
  await page.getByTestId('hosts-page').waitFor();
  await page.getByTestId('host-state-h1').waitFor();
  assert.equal(await page.getByTestId('add-host').count(), 0, 'a viewer has no "add host"');
  await shot(page, 'viewer-hosts');

  const jobs = await ok('GET', '/clusters/demo/jobs');
  await page.goto(`${server.url}/jobs/${jobs.items[0].id}`);
  await page.getByTestId('job-page').waitFor();
  await page.getByTestId('job-state').waitFor();
  assert.equal(await page.getByTestId('job-actions').count(), 0, 'a viewer has no job controls');
  await shot(page, 'viewer-job');

  // What the console hides, the server refuses: the viewer's own token, a forged call.
  const forged = await page.evaluate(async () => {
    const token = localStorage.getItem('bigmgr.token');
    const res = await fetch('/api/v1/clusters', {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'forged' }),
    });
    return { status: res.status, body: await res.json() };
  });
  assert.equal(forged.status, 403, JSON.stringify(forged.body));
  const clusters = await ok('GET', '/clusters');
  assert.ok(!clusters.items.some((c) => c.name === 'forged'), 'nothing was created');
  await context.close();
});

test('every page of the app is a deep link that survives a reload', async () => {
  const page = await signedIn(server.token, '/clusters/demo/jobs');
  await page.getByTestId('jobs-page').waitFor();
  await page.getByTestId('jobs-table').waitFor();
  await shot(page, 'jobs');
  await page.reload();
  await page.getByTestId('jobs-page').waitFor();
  // Every other page, opened by its URL (a deep link) and screenshotted.
  for (const [path, testid, name] of [
    ['/clusters/demo/services', 'services-page', 'services'],
    ['/stacks', 'stacks-page', 'stacks'],
    ['/stacks/demo/hello', 'stacks-page', 'stack-service'],
    ['/admin/users', 'users-page', 'users'],
    ['/admin/audit', 'audit-page', 'audit'],
  ]) {
    await page.goto(`${server.url}${path}`);
    await page.getByTestId(testid).waitFor();
    // Live pages keep their event stream open (no "network idle"): give the first answers a
    // moment to be drawn before the screenshot.
    await page.waitForTimeout(500);
    await shot(page, name);
  }
  // Dark mode: the same page, restyled.
  await page.getByTestId('dark-toggle').click();
  await page.goto(`${server.url}/clusters/demo/services`);
  await page.getByTestId('services-page').waitFor();
  await shot(page, 'services-dark');
  await page.goto(`${server.url}/no/such/page`);
  await page.getByTestId('not-found').waitFor();
  await shot(page, 'not-found');
  await waitUntil('the page to stay signed in', async () => (await page.evaluate(() => localStorage.getItem('bigmgr.token'))) === server.token);
  await page.context().close();
});
