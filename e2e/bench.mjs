// Measures the web console at scale in headless chromium on this machine, and prints:
// - the gzipped size of what the first page load fetches (the initial bundle: index.html and
//   the scripts and styles it links),
// - from navigation to a rendered hosts page of 1 000 hosts (its count shown and its first
//   rows drawn),
// - from navigation to a rendered job page of 10 000 tasks (stages and the first task rows).
// Each navigation is measured `RUNS` times in a fresh page; the server and the browser are
// the real ones (`bigmgr serve` debug build with the console embedded, Debian's chromium).
//
// Usage: cargo build -p bigmgr-server --bin bigmgr && (cd e2e && npm ci && node bench.mjs)

import { gzipSync } from 'node:zlib';
import { join } from 'node:path';
import { launchBrowser, root, startServer } from './harness.mjs';

const HOSTS = Number(process.env.HOSTS ?? 1000);
const RUNS = Number(process.env.RUNS ?? 3);

const server = await startServer({ stacks: join(root, 'e2e', 'stacks') });
const browser = await launchBrowser();
try {
  const ok = async (method, path, body) => {
    const res = await server.api(method, path, body);
    if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  };

  // The initial bundle: what index.html links, gzipped as a server would send it.
  const html = await (await fetch(`${server.url}/`)).text();
  const linked = [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+\.(?:js|css))"/g)].map((m) => m[1]);
  let raw = html.length;
  let gz = gzipSync(html).length;
  for (const path of linked) {
    const bytes = Buffer.from(await (await fetch(`${server.url}${path}`)).arrayBuffer());
    raw += bytes.length;
    gz += gzipSync(bytes).length;
  }
  console.log(
    `initial bundle: ${linked.length + 1} files, ${(raw / 1024).toFixed(1)} KiB, ${(gz / 1024).toFixed(1)} KiB gzipped`,
  );

  // 1 000 hosts (WAITING: no agent needed to show them) and a 10 000-task job on them.
  await ok('POST', '/clusters', { name: 'big' });
  const names = [];
  for (let i = 0; i < HOSTS; i++) {
    const name = `h${String(i).padStart(4, '0')}`;
    names.push(name);
    await ok('POST', '/clusters/big/hosts', { name, address: `10.${(i >> 8) & 255}.${i & 255}.1` });
  }
  const placement = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`c${i}`, names]));
  await ok('POST', '/clusters/big/services', { name: 'many', stack: 'e2e', service: 'many', placement });
  const job = await ok('POST', '/clusters/big/jobs', {
    command: 'install',
    target: { service: 'many' },
    options: { parallelism: 1 },
  });
  const detail = await ok('GET', `/jobs/${job.id}`);
  const tasks = detail.stages.reduce((n, s) => n + s.tasks.length, 0);

  const measure = async (what, path, ready) => {
    const times = [];
    for (let run = 0; run < RUNS; run++) {
      const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
      await context.addInitScript((token) => localStorage.setItem('bigmgr.token', token), server.token);
      const page = await context.newPage();
      const start = Date.now();
      await page.goto(`${server.url}${path}`);
      await ready(page);
      times.push(Date.now() - start);
      await context.close();
    }
    times.sort((a, b) => a - b);
    console.log(`${what}: ${times.map((t) => `${t} ms`).join(', ')} (median ${times[Math.floor(times.length / 2)]} ms)`);
  };
  await measure(`hosts page of ${HOSTS} hosts`, '/clusters/big/hosts', async (page) => {
    await page.getByTestId('hosts-count').filter({ hasText: String(HOSTS) }).waitFor({ timeout: 60000 });
    await page.getByTestId('host-link-h0000').waitFor({ timeout: 60000 });
  });
  await measure(`job page of ${tasks} tasks`, `/jobs/${job.id}`, async (page) => {
    await page.getByTestId('job-state').waitFor({ timeout: 60000 });
    await page.getByTestId(`stage-${detail.stages[0].id}`).waitFor({ timeout: 60000 });
    await page.getByTestId(`task-log-${detail.stages[0].tasks[0].id}`).waitFor({ timeout: 60000 });
  });
  await ok('POST', `/jobs/${job.id}/cancel`, {});
} finally {
  await browser.close();
  await server.stop();
}
