// The end-to-end tests' harness: a real `bigmgr serve` on a free loopback port with its own
// data directory, real `bigmgr-agent`s on 127.0.0.x with their own roots, and Debian's
// chromium driven by playwright-core. Every process started here is killed by pid (its whole
// process group, and the daemons its scripts started: every pid file under an agent's units/)
// when the test stops it, and at exit even when a test fails.

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
/** The workspace's root. */
export const root = resolve(here, '..');
const target = process.env.CARGO_TARGET_DIR ?? join(root, 'target');
/** Where every page is screenshotted, for a reviewer to look at. */
export const screenshots = join(target, 'ui-screenshots');

const bin = (name) => join(target, 'debug', name);

/** Every child still running, to kill at exit. */
const running = new Set();
/** Roots of agents, whose daemons' pid files are killed at exit. */
const roots = new Set();

function killGroup(pid) {
  for (const target of [-pid, pid]) {
    try {
      process.kill(target, 'SIGKILL');
    } catch {
      // Gone already.
    }
  }
}

/** Kills the daemons an agent's scripts started: every pid file under `<root>/units`. */
function killDaemons(agentRoot) {
  const walk = (dir) => {
    let entries = [];
    try {
      entries = readdirSync(dir);
    } catch {
      return;
    }
    for (const name of entries) {
      const path = join(dir, name);
      let st;
      try {
        st = statSync(path);
      } catch {
        continue;
      }
      if (st.isDirectory()) walk(path);
      else if (name.endsWith('.pid')) {
        const pid = Number.parseInt(readFileSync(path, 'utf8').trim(), 10);
        if (pid > 1) killGroup(pid);
      }
    }
  };
  walk(join(agentRoot, 'units'));
}

function stopEverything() {
  for (const child of running) killGroup(child.pid);
  running.clear();
  for (const r of roots) killDaemons(r);
}
process.on('exit', stopEverything);
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    stopEverything();
    process.exit(130);
  });
}

/** A child process whose output lines are kept and can be waited for. */
class Proc {
  constructor(cmd, args, env) {
    this.lines = [];
    this.waiters = [];
    this.child = spawn(cmd, args, {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    running.add(this.child);
    this.exited = new Promise((res) => {
      this.child.on('exit', (code, signal) => {
        running.delete(this.child);
        res({ code, signal });
      });
      // A binary that cannot be started (not built) emits no 'exit': stopping must not wait.
      this.child.on('error', (error) => {
        running.delete(this.child);
        this.line(`${cmd} could not be started: ${error.message}`);
        res({ code: null, signal: null, error });
      });
    });
    for (const stream of [this.child.stdout, this.child.stderr]) {
      let rest = '';
      stream.on('data', (chunk) => {
        rest += chunk.toString();
        const parts = rest.split('\n');
        rest = parts.pop() ?? '';
        for (const line of parts) this.line(line);
      });
    }
  }

  line(line) {
    this.lines.push(line);
    this.waiters = this.waiters.filter(({ re, resolve: done }) => {
      if (re.test(line)) {
        done(line);
        return false;
      }
      return true;
    });
  }

  /** The first line (past or future) matching `re`, or an error after `ms`. */
  waitFor(re, ms) {
    const seen = this.lines.find((l) => re.test(l));
    if (seen) return Promise.resolve(seen);
    return new Promise((res, rej) => {
      const timer = setTimeout(
        () => rej(new Error(`no line matching ${re} within ${ms} ms; output:\n${this.tail()}`)),
        ms,
      );
      this.waiters.push({
        re,
        resolve: (l) => {
          clearTimeout(timer);
          res(l);
        },
      });
    });
  }

  tail(n = 40) {
    return this.lines.slice(-n).join('\n');
  }

  async stop() {
    if (this.child.pid !== undefined) killGroup(this.child.pid);
    await this.exited;
  }
}

/** A free TCP port on 127.0.0.1. */
export function freePort() {
  return new Promise((res, rej) => {
    const s = net.createServer();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

/** Polls `check` until it returns a truthy value; that value, or an error after `ms`. */
export async function waitUntil(what, check, ms = 30000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Starts `bigmgr serve` with a fresh data directory, a known admin token and 1 s heartbeats
 * (and the stack directory `opts.stacks`, searched before the shipped stacks).
 * `server.api(method, path, body, token)` calls its REST API (`/api/v1` + path) and answers
 * `{status, body}`.
 */
export async function startServer(opts = {}) {
  const data = mkdtempSync(join(tmpdir(), 'bigmgr-e2e-'));
  const port = await freePort();
  const token = `bmt_e2e_${randomBytes(16).toString('hex')}`;
  const proc = new Proc(
    bin('bigmgr'),
    [
      'serve',
      // The console is tested over plain HTTP (the browser would need the server's CA);
      // TLS itself is tested by the server's own tests.
      '--insecure-http',
      '--listen',
      `127.0.0.1:${port}`,
      '--data',
      data,
      '--heartbeat-interval',
      '1s',
      ...(opts.stacks ? ['--stacks', opts.stacks] : []),
    ],
    { BIGMGR_ADMIN_TOKEN: token },
  );
  await proc.waitFor(/bigmgr listening on/, 60000);
  const url = `http://127.0.0.1:${port}`;
  const api = async (method, path, body, bearer = token) => {
    const res = await fetch(`${url}/api/v1${path}`, {
      method,
      headers: {
        ...(bearer ? { authorization: `Bearer ${bearer}` } : {}),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // Not JSON.
    }
    return { status: res.status, body: parsed };
  };
  const stop = async () => {
    await proc.stop();
    rmSync(data, { recursive: true, force: true });
  };
  return { url, token, data, proc, api, stop };
}

/** Starts `bigmgr-agent` for host `name` on `address` with its own root, joining with `joinToken`. */
export function startAgent(server, joinToken, name, address) {
  const agentRoot = mkdtempSync(join(tmpdir(), `bigmgr-e2e-${name}-`));
  roots.add(agentRoot);
  const proc = new Proc(bin('bigmgr-agent'), [
    '--server',
    server.url,
    '--join-token',
    joinToken,
    '--name',
    name,
    '--address',
    address,
    '--root',
    agentRoot,
    '--grace',
    '1s',
  ]);
  const stop = async () => {
    await proc.stop();
    killDaemons(agentRoot);
    roots.delete(agentRoot);
    rmSync(agentRoot, { recursive: true, force: true });
  };
  return { name, root: agentRoot, proc, stop };
}

/**
 * Starts the agent an operator starts by pasting `command` (the console's "add host" command:
 * `bigmgr-agent --server … --join-token … --name … --address … --root …`), as a shell would
 * split it, with this build's binary and a fresh root in place of the command's own.
 */
export function startAgentFromCommand(command) {
  // Single-quoted words (the console quotes any word with a character a shell treats specially)
  // and bare words; the values used here hold no quote themselves.
  const words = [...command.matchAll(/'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2]);
  if (words[0] !== 'bigmgr-agent') throw new Error(`not an agent command: ${command}`);
  const flags = {};
  for (let i = 1; i < words.length; i += 2) flags[words[i]] = words[i + 1];
  for (const f of ['--server', '--join-token', '--name', '--address', '--root']) {
    if (!flags[f]) throw new Error(`the command has no ${f}: ${command}`);
  }
  return startAgent({ url: flags['--server'] }, flags['--join-token'], flags['--name'], flags['--address']);
}

/** Debian's chromium, headless, driven by playwright-core (no browser download). */
export function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** Saves a full-page screenshot of `page` as `target/ui-screenshots/<name>.png`. */
export async function shot(page, name) {
  mkdirSync(screenshots, { recursive: true });
  await page.screenshot({ path: join(screenshots, `${name}.png`), fullPage: true });
}

/** A REST call to `server` that must succeed (2xx); its body. */
export async function apiOk(server, method, path, body, token) {
  const res = await server.api(method, path, body, token);
  if (res.status < 200 || res.status >= 300) {
    throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`);
  }
  return res.body;
}

/** A new page of a fresh context of `browser`, signed in to `server` with `token` through the
 * login page, landed on `next`. */
export async function signIn(browser, server, token, next) {
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
