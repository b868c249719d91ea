// Adding hosts over SSH in the web console, in Chromium against a real `bigmgr serve`: an admin
// follows "Add hosts over SSH" from the Hosts page, pastes a real private key (made here by
// ssh-keygen) and two machines where no SSH server listens (port 1 of 127.0.0.9 and 127.0.0.10:
// the connection is refused; nothing else is reachable here). A name given twice is refused
// first, shown on its line. Then the job's page opens, and each task fails alone with its own
// connection error in the table and in its log, and the job fails: the page, the endpoint and a
// per-host failure, end to end. The key is kept nowhere in the browser. A viewer is offered no
// such button, the page tells them to ask an admin, and the endpoint refuses them. Screenshots
// go to target/ui-screenshots/.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { apiOk, launchBrowser, shot, signIn, startServer, waitUntil } from '../harness.mjs';

let server;
let browser;
let keyDir;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  keyDir = mkdtempSync(join(tmpdir(), 'bigmgr-e2e-ssh-key-'));
});

after(async () => {
  await browser?.close();
  await server?.stop();
  if (keyDir) rmSync(keyDir, { recursive: true, force: true });
});

/** A REST call that must succeed; its body. */
const ok = (method, path, body, token) => apiOk(server, method, path, body, token);

/**
 * A fresh ed25519 private key without a passphrase: OpenSSH format from ssh-keygen, or (where
 * ssh-keygen is missing) PKCS#8 PEM from node, which the server's SSH client reads too.
 */
function privateKey() {
  const path = join(keyDir, 'id_ed25519');
  try {
    execFileSync('ssh-keygen', ['-t', 'ed25519', '-N', '', '-C', 'bigmgr-e2e', '-f', path, '-q'], { stdio: 'pipe' });
    return readFileSync(path, 'utf8');
  } catch (e) {
    if (e.code !== 'ENOENT') throw e;
    return generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' });
  }
}

/** The key's base64 body (no armour lines), to look for it where it must not be. */
const keyBody = (key) => key.split('\n').filter((l) => l && !l.startsWith('-----')).join('');

const MACHINES = { m1: '127.0.0.9', m2: '127.0.0.10' };

test('an admin adds two unreachable machines over SSH from the Hosts page: each task fails alone with its connection error, and so does the job', async () => {
  await ok('POST', '/clusters', { name: 'ssh' });
  const key = privateKey();
  assert.match(key, /^-----BEGIN (OPENSSH )?PRIVATE KEY-----\n/);

  const page = await signIn(browser, server, server.token, '/clusters/ssh/hosts');
  await page.getByTestId('hosts-page').waitFor();
  await page.getByTestId('add-hosts-ssh').click();
  await page.waitForURL((u) => u.pathname === '/clusters/ssh/hosts/bootstrap');
  await page.getByTestId('bootstrap-page').waitFor();
  const machines = page.getByTestId('bootstrap-machines').locator('textarea');
  const keyField = page.getByTestId('bootstrap-key').locator('textarea');

  // A name given twice: the server refuses the whole request, and the page shows it on line 2.
  await machines.fill('m1 127.0.0.9:1\nm1 127.0.0.10:1\n');
  await keyField.fill(key);
  await page.getByTestId('bootstrap-submit').click();
  const twice = page.getByTestId('field-error-hosts[1].name');
  await twice.waitFor();
  assert.match(await twice.innerText(), /^Line 2: .*m1/, await twice.innerText());
  assert.equal(await keyField.inputValue(), '', 'the key is cleared once sent');
  assert.ok(page.url().endsWith('/clusters/ssh/hosts/bootstrap'), page.url());
  await page.waitForTimeout(400); // the message's fade-in, for the screenshot
  await shot(page, 'bootstrap-refused');

  // Two machines where nothing listens on the SSH port given.
  await machines.fill(Object.entries(MACHINES).map(([name, address]) => `${name} ${address}:1`).join('\n'));
  await keyField.fill(key);
  await page.getByTestId('bootstrap-count').filter({ hasText: '2 machines' }).waitFor();
  // The refusal was about the text as sent: the edit takes it away.
  await twice.waitFor({ state: 'detached' });
  await shot(page, 'bootstrap-form');
  await page.getByTestId('bootstrap-submit').click();
  // The job's page, or the refusal (whose text is then the failure).
  await page.locator('[data-testid="job-page"], [data-testid="problem"], [data-testid^="field-error-"]').first().waitFor({ timeout: 30000 });
  const path = new URL(page.url()).pathname;
  if (!/^\/jobs\/\d+$/.test(path)) {
    const refused = await page.locator('[data-testid="problem"], [data-testid^="field-error-"]').allInnerTexts();
    assert.fail(`the bootstrap was refused: ${refused.join(' / ')}`);
  }
  const id = Number(path.slice('/jobs/'.length));
  const stored = await page.evaluate(() => JSON.stringify([{ ...localStorage }, { ...sessionStorage }]));
  assert.ok(!stored.includes(keyBody(key).slice(0, 40)), 'the browser keeps no part of the key');

  // The job: `bootstrap`, one task per machine; it fails, and so does each task, alone.
  const state = page.locator('[data-testid="job-state"]');
  await page.locator('[data-testid="job-state"][data-state="FAILED"]').waitFor({ timeout: 90000 });
  assert.equal((await state.innerText()).trim(), 'FAILED');
  const job = await ok('GET', `/jobs/${id}`);
  assert.equal(job.command, 'bootstrap');
  assert.equal(job.cluster, 'ssh');
  assert.equal(job.state, 'FAILED');
  const tasks = job.stages.flatMap((s) => s.tasks);
  assert.deepEqual(tasks.map((t) => t.host).sort(), Object.keys(MACHINES), JSON.stringify(tasks));
  for (const task of tasks) {
    const address = MACHINES[task.host];
    const other = Object.values(MACHINES).find((a) => a !== address);
    assert.equal(task.state, 'FAILED', JSON.stringify(task));
    // Its own connection error: its address and port, refused; not the other machine's.
    assert.ok(task.message?.includes(`${address}:1`), JSON.stringify(task));
    assert.match(task.message, /refused/i, JSON.stringify(task));
    assert.ok(!task.message.includes(other), JSON.stringify(task));
    // The page shows the same, live.
    const cell = page.getByTestId(`task-state-${task.id}`);
    await waitUntil(`task ${task.id} shown FAILED`, async () => (await cell.innerText()).trim() === 'FAILED');
    const message = page.getByTestId(`task-message-${task.id}`);
    await waitUntil(`task ${task.id}'s message shown`, async () => (await message.textContent()) === task.message);
  }
  await page.waitForTimeout(400); // the tags' colour transition, for the screenshot
  await shot(page, 'bootstrap-job');

  // A task's log: its steps, from connecting to the failure.
  const first = tasks.find((t) => t.host === 'm1');
  await page.getByTestId(`task-log-${first.id}`).click();
  const log = page.getByTestId('log-lines');
  await waitUntil('m1 log lines', async () => /refused/i.test(await log.innerText()));
  const lines = await log.innerText();
  assert.match(lines, /connecting/i, lines);
  assert.ok(lines.includes('127.0.0.9'), lines);
  assert.ok(!lines.includes('127.0.0.10'), lines);
  assert.ok(!lines.includes(keyBody(key).slice(0, 40)), 'the log holds no part of the key');
  await shot(page, 'bootstrap-task-log');
  await page.context().close();

  // A viewer: no button, the page says to ask an admin, and the endpoint refuses them.
  await ok('POST', '/users', { name: 'vi', role: 'viewer' });
  const viewerToken = (await ok('POST', '/users/vi/tokens', { name: 'e2e' })).token;
  const viewer = await signIn(browser, server, viewerToken, '/clusters/ssh/hosts');
  await viewer.getByTestId('hosts-page').waitFor();
  await viewer.getByTestId('hosts-count').waitFor();
  assert.equal(await viewer.getByTestId('add-hosts-ssh').count(), 0, 'a viewer has no "add hosts over SSH"');
  await viewer.goto(`${server.url}/clusters/ssh/hosts/bootstrap`);
  await viewer.getByTestId('bootstrap-forbidden').waitFor();
  assert.equal(await viewer.getByTestId('bootstrap-form').count(), 0);
  await shot(viewer, 'bootstrap-viewer');
  await viewer.context().close();
  const refused = await server.api(
    'POST',
    '/clusters/ssh/hosts/bootstrap',
    { hosts: [{ name: 'm3', address: '127.0.0.11', ssh_port: 1 }], ssh_key: key },
    viewerToken,
  );
  assert.equal(refused.status, 403, JSON.stringify(refused.body));
});
