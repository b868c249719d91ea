// Cluster specs in the web console, in Chromium against a real `bigmgr serve` and a real agent
// on 127.0.0.2: an admin exports the running cluster's spec on the spec page (a secret comes
// as a reference, whose value the page asks for), edits a config value in the editor, plans
// it (the `~` line with both values), applies it after the confirmation, and follows the job
// it submitted to its success; the cluster then holds the new values (the secret's in the
// unit's rendered file) and plans nothing. A spec with a problem is shown with its line; a
// viewer plans but is offered no Apply. Screenshots go to target/ui-screenshots/.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
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

/** The job's state once it has ended. */
async function jobEnded(id) {
  return waitUntil(`job ${id} to end`, async () => {
    const j = await ok('GET', `/jobs/${id}`);
    return ['SUCCEEDED', 'FAILED', 'CANCELED'].includes(j.state) ? j.state : null;
  }, 90000);
}

/** The text of every file named `name` under `dir`. */
function filesNamed(dir, name) {
  const out = [];
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) out.push(...filesNamed(path, name));
    else if (entry === name) out.push(readFileSync(path, 'utf8'));
  }
  return out;
}

test('an admin exports a cluster as a spec, edits a value, plans and applies it; a viewer only plans', async () => {
  await ok('POST', '/clusters', { name: 'specs' });
  const joinToken = await ok('POST', '/clusters/specs/join-tokens');
  agents.push(startAgent(server, joinToken.token, 'h1', '127.0.0.2'));
  await waitUntil('h1 online', async () => {
    const hosts = await ok('GET', '/clusters/specs/hosts');
    return hosts.items.some((h) => h.name === 'h1' && h.state === 'ONLINE');
  });
  await ok('POST', '/clusters/specs/services', {
    name: 'hello',
    stack: 'demo',
    service: 'hello',
    placement: { hello_server: ['h1'] },
    configs: { 'hello.conf': { greeting: 'hello from rest' } },
  });
  await ok('POST', '/clusters/specs/services', {
    name: 'vault',
    stack: 'e2e',
    service: 'vault',
    placement: { vault_server: ['h1'] },
    configs: { 'vault.conf': { password: 'pw-one' } },
  });
  for (const service of ['hello', 'vault']) {
    const deploy = await ok('POST', '/clusters/specs/jobs', { command: 'deploy', target: { service } });
    assert.equal(await jobEnded(deploy.id), 'SUCCEEDED', `deploy of ${service}`);
  }
  const agentRoot = agents[0].root;
  const rendered = () => filesNamed(join(agentRoot, 'units'), 'vault.conf');
  assert.ok(rendered().length > 0 && rendered().every((t) => t.includes('password=pw-one')), JSON.stringify(rendered()));

  // Export: the running cluster's spec lands in the editor.
  const page = await signedIn(server.token, '/clusters/specs/spec');
  await page.getByTestId('spec-page').waitFor();
  await page.getByTestId('spec-export').click();
  const references = page.getByTestId('spec-references');
  await references.waitFor();
  const editor = page.getByTestId('spec-text').locator('textarea');
  const exported = await editor.inputValue();
  assert.match(exported, /hello from rest/, exported);
  assert.match(exported, /hello_server/, exported);
  assert.doesNotMatch(exported, /pw-one/, 'the export holds no secret value');
  // The secret is a reference, listed, with a password field for its value.
  const reference = /\benv:[A-Za-z0-9_]+/.exec(await references.innerText())?.[0];
  assert.ok(reference, await references.innerText());
  assert.ok(exported.includes(`env = "${reference.slice(4)}"`), exported);
  const secret = page.getByTestId(`spec-secret-${reference}`).locator('input');
  assert.equal(await secret.getAttribute('type'), 'password');
  await page.waitForTimeout(400); // the buttons' enabling transition, for the screenshot
  await shot(page, 'spec-exported');

  // A spec with a problem: its line is listed beside the editor, nothing is planned. (The
  // secret is given first: a reference without a value is the problem the server finds first.)
  await secret.fill('pw-two');
  const broken = exported.replace(/greeting\s*=\s*"hello from rest"/, 'greeting = 42');
  assert.notEqual(broken, exported, 'the export writes greeting = "…"');
  await editor.fill(broken);
  await page.getByTestId('spec-plan').click();
  const problem = page.getByTestId('spec-problem').first();
  await problem.waitFor();
  // The problem is on the value's own line.
  const line = broken.split('\n').findIndex((l) => l.includes('greeting = 42')) + 1;
  const problems = await page.getByTestId('spec-problem').evaluateAll((els) =>
    els.map((e) => ({ line: Number(e.getAttribute('data-line')), text: e.textContent })),
  );
  assert.ok(
    problems.some((p) => p.line === line && /greeting/.test(p.text)),
    `a problem about greeting on line ${line}: ${JSON.stringify(problems)}`,
  );
  await shot(page, 'spec-problems');

  // The edit: a new greeting and a new secret, planned as two `~` changes and reconfigures.
  const edited = exported.replace(/greeting\s*=\s*"hello from rest"/, 'greeting = "hi from a spec"');
  await editor.fill(edited);
  await secret.fill('pw-two');
  await page.getByTestId('spec-plan').click();
  const result = page.getByTestId('spec-plan-result');
  const changes = result.locator('[data-testid="plan-line"][data-sign="~"]');
  await changes.first().waitFor();
  const changed = (await changes.allInnerTexts()).map((t) => t.replace(/\s+/g, ' ').trim());
  assert.ok(changed.includes('~ hello hello.conf.greeting: "hello from rest" -> "hi from a spec"'), JSON.stringify(changed));
  assert.ok(changed.some((t) => t.startsWith('~ vault vault.conf.password:')), JSON.stringify(changed));
  assert.ok(!changed.some((t) => t.includes('pw-')), 'the plan shows no secret value');
  await result.locator('[data-testid="plan-line"][data-sign=">"]').filter({ hasText: 'reconfigure' }).first().waitFor();
  await shot(page, 'spec-plan');

  // Apply, after the confirmation that repeats the counts; the job it submitted succeeds.
  await page.getByTestId('spec-apply').click();
  const dialog = page.getByTestId('spec-apply-dialog');
  await dialog.waitFor();
  assert.match(await dialog.getByTestId('spec-count-configs').innerText(), /\b2\b/);
  await shot(page, 'spec-apply-confirm');
  await dialog.getByTestId('spec-apply-confirm').click();
  const applied = page.getByTestId('spec-applied');
  await applied.waitFor({ timeout: 60000 });
  const links = applied.locator('[data-testid^="spec-job-"]');
  await links.first().waitFor();
  await shot(page, 'spec-applied');
  const ids = (await links.evaluateAll((els) => els.map((e) => e.getAttribute('data-testid')))).map((t) => Number(t.slice('spec-job-'.length)));
  assert.ok(ids.length >= 1, 'the apply submitted jobs');
  await links.first().click();
  await page.waitForURL((u) => u.pathname === `/jobs/${ids[0]}`);
  await page.getByTestId('job-state').filter({ hasText: 'SUCCEEDED' }).waitFor({ timeout: 90000 });
  await shot(page, 'spec-job');
  for (const id of ids) assert.equal(await jobEnded(id), 'SUCCEEDED', `job ${id}`);
  const hello = await ok('GET', '/clusters/specs/services/hello');
  assert.equal(hello.configs['hello.conf'].greeting, 'hi from a spec');
  await waitUntil('the units to be fresh', async () => (await ok('GET', '/clusters/specs/units')).every((u) => !u.stale));
  assert.ok(rendered().length > 0 && rendered().every((t) => t.includes('password=pw-two')), `the secret typed in arrived: ${JSON.stringify(rendered())}`);

  // The same spec again plans nothing.
  await page.goBack();
  await page.getByTestId('spec-page').waitFor();
  await editor.fill(edited);
  await secret.fill('pw-two');
  await page.getByTestId('spec-plan').click();
  await page.getByTestId('plan-empty').waitFor();
  await page.context().close();

  // A viewer plans the same text and is offered no Apply.
  await ok('POST', '/users', { name: 'vi', role: 'viewer' });
  const viewerToken = (await ok('POST', '/users/vi/tokens', { name: 'e2e' })).token;
  const viewer = await signedIn(viewerToken, '/clusters/specs/spec');
  await viewer.getByTestId('spec-page').waitFor();
  await viewer.getByTestId('spec-text').locator('textarea').fill(edited);
  await viewer.getByTestId(`spec-secret-${reference}`).locator('input').fill('pw-two');
  await viewer.getByTestId('spec-plan').click();
  await viewer.getByTestId('plan-empty').waitFor();
  assert.equal(await viewer.getByTestId('spec-apply').count(), 0, 'a viewer has no Apply');
  await viewer.getByTestId('spec-apply-forbidden').waitFor();
  await shot(viewer, 'spec-viewer');
  await viewer.context().close();
});
