// What an operator does in the web console, in Chromium against a real `bigmgr serve` with
// real agents on 127.0.0.2 and 127.0.0.3: signs in with a token and comes back to the page
// they asked for, creates a cluster, starts agents with the command "add host" gives and
// watches them come online, adds a service through the wizard and follows its deploy live,
// changes a config, reads the diff, applies it rolling and rolls it back, cancels a long job,
// relates two services; a placement breaking cardinality is shown on its field; a viewer finds
// no mutating control and a forged mutating call is refused. Every page is screenshotted into
// target/ui-screenshots/.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { apiOk, launchBrowser, root, shot, startAgentFromCommand, startServer, waitUntil, signIn } from '../harness.mjs';

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

/**
 * Picks the option labelled `label` of the naive-ui select inside `testid` (more labels: a
 * multiple select), and waits for its menu to close, so the next pick finds its own menu.
 */
async function pick(page, testid, ...labels) {
  await page.getByTestId(testid).locator('.n-base-selection').click();
  for (const label of labels) {
    await page.locator('.n-base-select-option:visible', { hasText: label }).first().click();
  }
  if (labels.length > 1) await page.keyboard.press('Escape');
  await page.waitForFunction(() =>
    [...document.querySelectorAll('.n-base-select-menu')].every((m) => m.getClientRects().length === 0),
  );
}

/** Waits for the job page to show `state`; the job's id from the URL. */
async function jobEnds(page, state, timeout = 90000) {
  await page.waitForURL(/\/jobs\/\d+$/);
  await page.getByTestId('job-state').filter({ hasText: state }).waitFor({ timeout });
  return Number(new URL(page.url()).pathname.split('/').pop());
}

test('an operator creates a cluster, adds hosts, a service through the wizard, changes, applies and rolls back a config, and cancels a long job', async () => {
  // Signed out, a deep link goes to the login page, which says how to sign in.
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const anon = await context.newPage();
  await anon.goto(`${server.url}/clusters/demo/hosts`);
  await anon.waitForURL((u) => u.pathname === '/login' && u.searchParams.get('next') === '/clusters/demo/hosts');
  await anon.getByTestId('login-card').waitFor();
  await shot(anon, 'login');
  await context.close();

  // The cluster is created in the console.
  const page = await signedIn(server.token, '/');
  await page.getByTestId('create-cluster-name').locator('input').fill('demo');
  await page.getByTestId('create-cluster-submit').click();
  await page.waitForURL((u) => u.pathname === '/clusters/demo/hosts');
  await page.getByTestId('hosts-page').waitFor();

  // Each host: "add host" gives the agent command with a fresh join token; the agent started
  // with it joins, and the open list shows it without a reload.
  for (const [name, address] of [['h1', '127.0.0.2'], ['h2', '127.0.0.3']]) {
    await page.getByTestId('add-host').click();
    await page.getByTestId('add-host-name').locator('input').fill(name);
    await page.getByTestId('add-host-address').locator('input').fill(address);
    await page.getByTestId('add-host-create').click();
    const command = page.getByTestId('add-host-command');
    await command.filter({ hasText: '--join-token' }).waitFor();
    if (name === 'h1') await shot(page, 'add-host');
    agents.push(startAgentFromCommand(await command.innerText()));
    await page.keyboard.press('Escape');
    await page.getByTestId('add-host-dialog').waitFor({ state: 'hidden' });
  }
  for (const h of ['h1', 'h2']) {
    await page.getByTestId(`host-state-${h}`).filter({ hasText: 'ONLINE' }).waitFor({ timeout: 30000 });
  }
  await shot(page, 'hosts');

  // The wizard: stack, service, placement on both hosts (checked by the server), a greeting
  // other than the default, review, deploy — and the deploy followed live.
  await page.goto(`${server.url}/clusters/demo/services`);
  await page.getByTestId('add-service').click();
  await page.getByTestId('add-service-page').waitFor();
  await pick(page, 'wizard-stack', 'demo 1.0.0');
  await page.getByTestId('wizard-next').click();
  await pick(page, 'wizard-service', 'hello');
  await page.getByTestId('wizard-next').click();
  await pick(page, 'placement-hello_server', 'h1', 'h2');
  await shot(page, 'wizard-placement');
  await page.getByTestId('wizard-next').click();
  const greeting = page.getByTestId('config-hello.conf-greeting').locator('input');
  await greeting.fill('hi from the console');
  await shot(page, 'wizard-configuration');
  await page.getByTestId('wizard-next').click();
  const review = page.getByTestId('wizard-review');
  await review.filter({ hasText: 'hi from the console' }).waitFor();
  await review.filter({ hasText: 'h2' }).waitFor();
  await page.locator('[data-testid="wizard-steps"][data-step="review"]').waitFor();
  await page.waitForTimeout(400); // the step indicator's transition, for the screenshot
  await shot(page, 'wizard-review');
  await page.getByTestId('wizard-deploy').click();
  await page.getByTestId('job-page').waitFor();
  const deploy = await jobEnds(page, 'SUCCEEDED');
  await shot(page, 'job-deploy');
  const hello = await ok('GET', '/clusters/demo/services/hello');
  assert.deepEqual(hello.configs, { 'hello.conf': { greeting: 'hi from the console' } }, 'only the changed value was sent');
  assert.deepEqual(hello.units.map((u) => u.host).sort(), ['h1', 'h2']);
  const deployed = await ok('GET', `/jobs/${deploy}`);
  const someTask = deployed.stages.flatMap((s) => s.tasks).find((t) => t.host === 'h1');
  await page.getByTestId(`task-log-${someTask.id}`).click();
  await page.getByTestId('log-lines').filter({ hasText: 'hello' }).waitFor({ timeout: 30000 });
  await page.keyboard.press('Escape');

  // The host's page lists the tasks it ran, with their job.
  await page.goto(`${server.url}/clusters/demo/hosts/h1`);
  await page.getByTestId('host-page').waitFor();
  await page.getByTestId(`host-task-${someTask.id}`).waitFor();
  await shot(page, 'host');

  // A config change: saved with a message, shown as a diff, the units stale until applied
  // (rolling), then rolled back.
  await page.goto(`${server.url}/clusters/demo/services/hello/configs`);
  await page.getByTestId('config-form').waitFor();
  await page.getByTestId('rendered-files').filter({ hasText: 'greeting=hi from the console' }).waitFor();
  const interval = page.getByTestId('config-hello.conf-interval').locator('input');
  await interval.fill('7');
  await page.getByTestId('config-message').locator('input').fill('beat slower');
  await page.getByTestId('config-save').click();
  await page.getByTestId('config-version-2').waitFor();
  await page.goto(`${server.url}/clusters/demo/services/hello/configs?from=1&to=2`);
  const row = page.getByTestId('diff-row-hello.conf-interval');
  await row.locator('[data-col="to"]').filter({ hasText: '7' }).waitFor();
  await page.getByTestId('stale-banner').waitFor();
  await shot(page, 'configs-diff');
  const staleBefore = (await ok('GET', '/clusters/demo/units')).filter((u) => u.stale).length;
  assert.equal(staleBefore, 2, 'both units are stale after the change');
  await page.getByTestId('apply-rolling').click();
  await jobEnds(page, 'SUCCEEDED');
  await page.goto(`${server.url}/clusters/demo/services/hello/configs`);
  await page.getByTestId('config-form').waitFor();
  await page.getByTestId('rendered-files').filter({ hasText: 'interval=7' }).waitFor();
  await waitUntil('the units to stop being stale', async () => (await ok('GET', '/clusters/demo/units')).every((u) => !u.stale));
  await page.getByTestId('stale-banner').waitFor({ state: 'detached' });
  await page.getByTestId('config-rollback-1').click();
  await page.locator('.n-popconfirm__action button').last().click();
  await page.getByTestId('config-version-3').waitFor();
  await page.getByTestId('stale-banner').waitFor();
  await shot(page, 'configs-rolled-back');
  const v3 = await ok('GET', '/clusters/demo/services/hello/configs/3');
  const v1 = await ok('GET', '/clusters/demo/services/hello/configs/1');
  assert.deepEqual(v3.configs, v1.configs, 'version 3 holds version 1 values');

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
  await waitUntil('cancel to be enabled while the job runs', () => cancel.isEnabled());
  await cancel.click();
  await page.getByTestId('job-state').filter({ hasText: 'CANCELED' }).waitFor({ timeout: 30000 });
  // The controls follow the state the page shows (they may be drawn a moment after it).
  await waitUntil('cancel to be disabled once canceled', async () => !(await page.getByTestId('job-cancel').isEnabled()));
  await waitUntil('retry to be enabled once canceled', () => page.getByTestId('job-retry').isEnabled());
  await shot(page, 'job-canceled');
  const after = await ok('GET', `/jobs/${long.id}`);
  assert.equal(after.state, 'CANCELED');

  // Relations: greeter relates to hello in the console; the graph and the timeline show it.
  await ok('POST', '/clusters/demo/services', {
    name: 'greeter',
    stack: 'demo',
    service: 'greeter',
    placement: { greeter_server: ['h1'] },
  });
  await page.goto(`${server.url}/clusters/demo/relations`);
  await page.getByTestId('relation-node-greeter').waitFor();
  await pick(page, 'relate-requirer', 'greeter');
  await pick(page, 'relate-provider', 'hello');
  await page.getByTestId('relate-submit').click();
  const rel = await waitUntil('the relation', async () => (await ok('GET', '/clusters/demo/relations'))[0]);
  await page.getByTestId(`relation-edge-${rel.id}`).click();
  await page.waitForURL((u) => u.searchParams.get('relation') === String(rel.id));
  await page.getByTestId('relation-events').waitFor();
  await shot(page, 'relations');
  await page.context().close();
});

test('a placement that breaks cardinality is shown on its field and nothing is created', async () => {
  const page = await signedIn(server.token, '/clusters/demo/services/new');
  await page.getByTestId('add-service-page').waitFor();
  await pick(page, 'wizard-stack', 'demo 1.0.0');
  await page.getByTestId('wizard-next').click();
  await pick(page, 'wizard-service', 'hello');
  await page.getByTestId('wizard-name').locator('input').fill('hello2');
  await page.getByTestId('wizard-next').click();
  await page.getByTestId('wizard-placement').waitFor();
  // No host for a "1+" component: the server's dry run refuses it, on that component's field.
  await page.getByTestId('wizard-next').click();
  const message = page.getByTestId('field-error-placement.hello_server');
  await message.waitFor();
  assert.match(await message.innerText(), /hello_server/);
  assert.equal(await page.getByTestId('wizard-steps').getAttribute('data-step'), 'placement', 'the wizard stays on the placement');
  await shot(page, 'wizard-field-error');
  const services = await ok('GET', '/clusters/demo/services');
  assert.ok(!services.items.some((s) => s.name === 'hello2'), 'nothing was created');
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

  await page.goto(`${server.url}/clusters/demo/services`);
  await page.getByTestId('service-hello').waitFor();
  assert.equal(await page.getByTestId('add-service').count(), 0, 'a viewer has no "add service"');
  assert.equal(await page.getByTestId('service-hello-restart').count(), 0, 'a viewer has no service commands');
  await page.goto(`${server.url}/clusters/demo/services/hello/configs`);
  await page.getByTestId('config-history').waitFor();
  await page.getByTestId('config-version-3').waitFor();
  for (const control of ['config-save', 'config-rollback-1', 'apply-rolling']) {
    assert.equal(await page.getByTestId(control).count(), 0, `a viewer has no ${control}`);
  }
  await shot(page, 'viewer-configs');

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
    ['/clusters/demo/configs', 'configs-page', 'configs'],
    ['/clusters/demo/relations', 'relations-page', 'relations-deep-link'],
    ['/clusters/demo/services/new', 'add-service-page', 'wizard-stack'],
    ['/clusters/demo/services/hello', 'service-page', 'service'],
    ['/clusters/demo/alerts', 'alerts-page', 'alerts'],
    ['/clusters/demo/spec', 'spec-page', 'spec'],
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
  // Simplified Chinese: the language is a preference kept across pages (Noto CJK from Debian
  // draws it).
  await page.evaluate(() => localStorage.setItem('bigmgr.locale', 'zh-CN'));
  await page.goto(`${server.url}/clusters/demo/hosts`);
  await page.getByTestId('hosts-page').waitFor();
  await page.getByTestId('nav-hosts').filter({ hasText: '主机' }).waitFor();
  await shot(page, 'hosts-zh-CN');
  await page.evaluate(() => localStorage.setItem('bigmgr.locale', 'en'));
  await page.goto(`${server.url}/no/such/page`);
  await page.getByTestId('not-found').waitFor();
  await shot(page, 'not-found');
  await waitUntil('the page to stay signed in', async () => (await page.evaluate(() => localStorage.getItem('bigmgr.token'))) === server.token);
  await page.context().close();
});
