// The assistant's chat drawer in the web console, in Chromium against a real `bigmgr serve` and
// a real agent on 127.0.0.40 (issue 16).
//
// No language model can run on this machine, so the model is a SCRIPTED STAND-IN: an
// OpenAI-compatible chat-completions server started by this test (node:http on 127.0.0.1),
// speaking the real wire format — `text/event-stream` lines `data: {chat.completion.chunk}`
// then `data: [DONE]`, tool calls streamed as `tool_calls` deltas — and answering each request
// with the next reply of its script. Its answers are canned; everything around them is real:
// the provider set through the API, the thread stored by the server, the tools run by the
// server as the signed-in user, the answer streamed to the browser as server-sent events, the
// proposal confirmed through the API, the job it makes run by the agent.
//
// The scenario: on cluster `chat`, the drawer asks a question; the model calls `list_hosts`
// (shown folded, with its arguments and the server's result), then streams its answer in
// pieces, each released only once the browser shows the one before (so the text streams, in
// order). Then the model proposes a job: the card shows the request, no job exists until
// Confirm, after which the card says confirmed with the job's link, and the job runs. Last,
// "Ask about this" on a failed job's page opens the drawer with the question filled in (and the
// model reads the task's log to answer it). Screenshots go to target/ui-screenshots/chat-*.png.

import assert from 'node:assert/strict';
import http from 'node:http';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { apiOk, launchBrowser, root, shot, startAgent, startServer, waitUntil, signIn } from '../harness.mjs';

let server;
let browser;
let model;
const agents = [];

/**
 * The scripted OpenAI-compatible server. `script(reply)` queues a reply: a list of chunks (each
 * sent as one `data:` line) and functions (awaited between chunks: the test's gates); `[DONE]`
 * ends it. Every request's body and Authorization header is kept in `requests`.
 */
function startModel() {
  const replies = [];
  const requests = [];
  const sockets = new Set();
  const srv = http.createServer(async (req, res) => {
    if (req.method !== 'POST' || req.url !== '/v1/chat/completions') {
      res.writeHead(404).end();
      return;
    }
    let text = '';
    for await (const c of req) text += c;
    let body = text;
    try {
      body = JSON.parse(text);
    } catch {
      // Kept as sent.
    }
    requests.push({ body, auth: req.headers.authorization });
    const reply = replies.shift();
    if (!reply) {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: 'the script has no more replies' } }));
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    for (const step of reply) {
      if (typeof step === 'function') await step();
      else res.write(`data: ${JSON.stringify(step)}\n\n`);
      if (res.destroyed) return;
    }
    res.end('data: [DONE]\n\n');
  });
  srv.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  return new Promise((res, rej) => {
    srv.on('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      res({
        url: `http://127.0.0.1:${srv.address().port}/v1`,
        requests,
        script(reply) {
          replies.push(reply);
        },
        pending: () => replies.length,
        stop: () =>
          new Promise((done) => {
            for (const s of sockets) s.destroy();
            srv.close(() => done());
          }),
      });
    });
  });
}

/** A streamed text answer: one chunk per piece, `gates[i]` awaited before piece i+1. */
function text(pieces, gates = []) {
  const out = [];
  pieces.forEach((p, i) => {
    if (i > 0 && gates[i - 1]) out.push(gates[i - 1]);
    out.push({ object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content: p }, finish_reason: null }] });
  });
  out.push({ object: 'chat.completion.chunk', choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] });
  return out;
}

/** Tool calls streamed as OpenAI does: id and name first, then the arguments in two pieces. */
function calls(list) {
  const out = [];
  list.forEach(([id, name, args], index) => {
    const a = JSON.stringify(args);
    const half = Math.floor(a.length / 2);
    out.push({
      object: 'chat.completion.chunk',
      choices: [{ index: 0, delta: { role: 'assistant', tool_calls: [{ index, id, type: 'function', function: { name, arguments: '' } }] } }],
    });
    for (const piece of [a.slice(0, half), a.slice(half)]) {
      out.push({ object: 'chat.completion.chunk', choices: [{ index: 0, delta: { tool_calls: [{ index, function: { arguments: piece } }] } }] });
    }
  });
  out.push({ object: 'chat.completion.chunk', choices: [{ index: 0, delta: {}, finish_reason: 'tool_calls' }] });
  return out;
}

/** A gate the model's reply waits at until the test opens it. */
function gate() {
  let open;
  const opened = new Promise((r) => {
    open = r;
  });
  const wait = () => opened;
  wait.open = open;
  return wait;
}

before(async () => {
  server = await startServer({ stacks: join(root, 'e2e', 'stacks') });
  model = await startModel();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await model?.stop();
  for (const a of agents) await a.stop();
  await server?.stop();
});

/** A REST call that must succeed; its body. */
const ok = (method, path, body, token) => apiOk(server, method, path, body, token);

/** A new page of a fresh browser context, signed in with `token` through the login page. */
const signedIn = (token, next) => signIn(browser, server, token, next);

/** The ids of cluster `c`'s jobs. */
async function jobIds(c) {
  return (await ok('GET', `/clusters/${c}/jobs`)).items.map((j) => j.id).sort((a, b) => a - b);
}

/** The kinds of the drawer's items (chat-user, chat-tool, chat-assistant, proposal-…), in order. */
function itemKinds(page) {
  return page
    .getByTestId('chat-messages')
    .evaluate((log) => [...log.children].map((c) => c.getAttribute('data-testid')).filter(Boolean));
}

/** How many answers the drawer shows (the next one's index). */
function answers(page) {
  return page.getByTestId('chat-assistant-text').count();
}

/**
 * Waits until answer `nth` (0 the first shown) reads exactly `want`; fails at once if it ever
 * reads something that is not a start of `want` (a piece out of order, or text that is not it).
 */
async function answerIs(page, nth, want, timeout = 15000) {
  const answer = page.getByTestId('chat-assistant-text').nth(nth);
  await waitUntil(`answer ${nth} to read ${JSON.stringify(want)}`, async () => {
    if ((await answer.count()) === 0) return false;
    // The streaming cursor (▍) is decoration, not the answer.
    const shown = (await answer.innerText()).replace(/▍$/, '');
    if (!want.startsWith(shown)) throw new Error(`the answer reads ${JSON.stringify(shown)}, which is not a start of ${JSON.stringify(want)}`);
    return shown === want;
  }, timeout);
}

/** Types `question` into the drawer and sends it. */
async function ask(page, question) {
  await page.getByTestId('chat-input').locator('textarea').fill(question);
  await page.getByTestId('chat-send').click();
}

/** Waits for the answer streaming now to end. */
async function answerEnds(page) {
  await page.getByTestId('chat-stop').waitFor({ state: 'detached', timeout: 30000 });
}

test('the chat drawer: a tool call folded, a streamed answer in order, a proposal that runs only when confirmed, and "Ask about this" on a failed job', async () => {
  // A cluster with one host whose `needy` service's start fails for real (a missing tool).
  await ok('POST', '/clusters', { name: 'chat' });
  const join = await ok('POST', '/clusters/chat/join-tokens');
  agents.push(startAgent(server, join.token, 'h1', '127.0.0.40'));
  await waitUntil('h1 online', async () => {
    const hosts = await ok('GET', '/clusters/chat/hosts');
    return hosts.items.some((h) => h.name === 'h1' && h.state === 'ONLINE');
  });
  await ok('POST', '/clusters/chat/services', { name: 'needy', stack: 'e2e', service: 'needy', placement: { needy_server: ['h1'] } });
  const { id: failed } = await ok('POST', '/clusters/chat/jobs', { command: 'start', target: { service: 'needy' } });
  await waitUntil('the start job to fail', async () => (await ok('GET', `/jobs/${failed}`)).state === 'FAILED', 60000);
  const failedTask = (await ok('GET', `/jobs/${failed}`)).stages.flatMap((s) => s.tasks).find((t) => t.state === 'FAILED');

  // The scripted model is the default provider (its key is written, never read back).
  const key = 'sk-e2e-scripted-0123456789';
  const provider = await ok('PUT', '/assistant/providers/scripted', {
    base_url: model.url,
    model: 'scripted-model',
    api_key: key,
    default: true,
    timeout_ms: 60000,
  });
  assert.equal(provider.has_key, true);
  assert.equal(provider.default, true);
  assert.ok(!JSON.stringify(provider).includes(key), 'the key is never returned');

  const page = await signedIn(server.token, '/clusters/chat/hosts');
  await page.getByTestId('assistant-open').click();
  const messages = page.getByTestId('chat-messages');
  await page.getByTestId('chat-empty').waitFor();
  await page.getByTestId('chat-input').waitFor();
  await shot(page, 'chat-empty');

  // 1. A question: the model reads the hosts with a tool, then answers in four pieces, each sent
  // only once the browser shows the ones before it.
  const pieces = ['Cluster chat has ', 'one host, h1, ', 'which is ONLINE; ', 'needy failed to start on it.'];
  const gates = [gate(), gate(), gate()];
  model.script(calls([['call_hosts', 'list_hosts', { cluster: 'chat' }]]));
  model.script(text(pieces, gates));
  const first = await answers(page);
  await ask(page, 'How are the hosts of this cluster?');
  await messages.getByTestId('chat-user').filter({ hasText: 'How are the hosts of this cluster?' }).waitFor();
  const tool = messages.locator('[data-testid="chat-tool"][data-tool="list_hosts"]');
  await tool.waitFor({ timeout: 30000 });
  let shown = '';
  for (const [i, piece] of pieces.entries()) {
    shown += piece;
    await answerIs(page, first, shown);
    if (i === 0) {
      // The tool came before the answer, folded away.
      assert.deepEqual(await itemKinds(page), ['chat-user', 'chat-tool', 'chat-assistant']);
      assert.equal(await tool.evaluate((d) => d.open), false, 'the tool call is folded');
      assert.equal(await tool.getByTestId('chat-tool-result').isVisible(), false);
      await shot(page, 'chat-streaming');
    }
    gates[i]?.open();
  }
  await answerEnds(page);
  await answerIs(page, first, pieces.join(''));
  // Unfolded: the arguments the model sent and what the server's tool answered.
  await tool.locator('summary').click();
  assert.match(await tool.getByTestId('chat-tool-arguments').innerText(), /"cluster":\s*"chat"/);
  assert.match(await tool.getByTestId('chat-tool-result').innerText(), /h1/);
  await shot(page, 'chat-tool');
  // What the model got: the tool's result, as the server ran it; never the key of the provider
  // in a body, nor the user's token.
  assert.equal(model.requests.length, 2);
  assert.equal(model.requests[0].auth, `Bearer ${key}`);
  assert.equal(model.requests[0].body.stream, true);
  const toolMessage = model.requests[1].body.messages.find((m) => m.role === 'tool');
  assert.equal(toolMessage?.tool_call_id, 'call_hosts');
  assert.match(toolMessage.content, /h1/);
  for (const { body } of model.requests) {
    const sent = JSON.stringify(body);
    assert.ok(!sent.includes(key) && !sent.includes(server.token), 'no secret reaches the model');
  }

  // 2. The model proposes a job: nothing runs until Confirm.
  const before = await jobIds('chat');
  model.script(calls([['call_check', 'propose_job', { cluster: 'chat', command: 'check', target: { service: 'needy' }, reason: 'asked in the chat' }]]));
  model.script(text(['I proposed ', 'checking needy; ', 'confirm it to run it.']));
  const second = await answers(page);
  await ask(page, 'Please check needy.');
  const card = messages.locator('[data-testid^="proposal-"][data-state]');
  await card.waitFor({ timeout: 30000 });
  await answerIs(page, second, 'I proposed checking needy; confirm it to run it.');
  await answerEnds(page);
  assert.equal(await card.getAttribute('data-state'), 'pending');
  assert.match(await card.getByTestId('proposal-request').innerText(), /^POST \/api\/v1\/clusters\/chat\/jobs/);
  assert.match(await card.getByTestId('proposal-request').innerText(), /"command":\s*"check"/);
  assert.equal(await card.getByTestId('proposal-state').innerText(), 'pending');
  await shot(page, 'chat-proposal');
  // The model was told nothing changed, and nothing did.
  assert.match(JSON.stringify(model.requests[3].body.messages.at(-1)), /nothing has changed/);
  await new Promise((r) => setTimeout(r, 500));
  assert.deepEqual(await jobIds('chat'), before, 'no job before the confirm');

  await card.getByTestId('proposal-confirm').click();
  await waitUntil('the proposal to be confirmed', async () => (await card.getAttribute('data-state')) === 'confirmed');
  assert.equal(await card.getByTestId('proposal-state').innerText(), 'confirmed');
  assert.equal(await card.getByTestId('proposal-confirm').count(), 0, 'no Confirm once decided');
  const after = await jobIds('chat');
  assert.equal(after.length, before.length + 1, 'the confirm made one job');
  const job = after.at(-1);
  const link = card.getByTestId(`proposal-job-${job}`);
  await link.waitFor();
  assert.match(await link.innerText(), new RegExp(`Job ${job} \\(check\\)`));
  assert.match(await card.getByTestId('proposal-result').innerText(), /It answered 202/);
  const made = await ok('GET', `/jobs/${job}`);
  assert.equal(made.command, 'check');
  assert.equal(made.options?.reason, 'asked in the chat');
  await shot(page, 'chat-confirmed');
  await waitUntil('the confirmed job to succeed', async () => (await ok('GET', `/jobs/${job}`)).state === 'SUCCEEDED', 60000);
  // The link opens the job's page.
  await link.click();
  await page.waitForURL((u) => u.pathname === `/jobs/${job}`);

  // 3. "Ask about this" on the failed job's page: the drawer opens about its cluster with the
  // question filled in; nothing is sent until Send.
  await page.goto(`${server.url}/jobs/${failed}`);
  await page.getByTestId('job-state').filter({ hasText: 'FAILED' }).waitFor({ timeout: 30000 });
  const asked = model.requests.length;
  await page.getByTestId('ask-job').click();
  const input = page.getByTestId('chat-input').locator('textarea');
  await input.waitFor();
  const question = `Job ${failed} (start) in cluster chat is FAILED. What went wrong, and what should I do?`;
  await waitUntil('the question to be filled in', async () => (await input.inputValue()) === question);
  // The conversation so far is the thread the server kept.
  await messages.getByTestId('chat-tool').first().waitFor();
  assert.equal(await messages.locator('[data-testid^="proposal-"][data-state="confirmed"]').count(), 1);
  assert.equal(model.requests.length, asked, 'nothing was sent');
  await shot(page, 'chat-ask-job');

  model.script(calls([['call_log', 'task_log', { job: failed, task: failedTask.id }]]));
  model.script(text(['The start ran ', 'no-such-tool-for-bigmgr, ', 'which is not installed.']));
  const third = await answers(page);
  await page.getByTestId('chat-send').click();
  await answerIs(page, third, 'The start ran no-such-tool-for-bigmgr, which is not installed.');
  await answerEnds(page);
  await shot(page, 'chat-job-answered');
  // The log the server read for the model (through the tool, as the user) shows why.
  const logTool = messages.locator('[data-testid="chat-tool"][data-tool="task_log"]');
  await logTool.locator('summary').click();
  assert.match(await logTool.getByTestId('chat-tool-result').innerText(), /no-such-tool-for-bigmgr/);
  assert.equal(model.pending(), 0, 'every scripted reply was asked for');
  await page.context().close();
});
