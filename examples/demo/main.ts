/**
 * `npm run demo`: a real local HTTP dependency that injects faults, called through
 * bulwark policies; prints, call by call, what each policy did. Then a small service
 * guarded by `bulwarkHandler` (deadline header, shedding), and a scrape of its /metrics.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import {
  budget,
  bulkhead,
  circuitBreaker,
  dependency,
  idempotency,
  loadShedder,
  pipeline,
  retry,
  retryBudget,
  timeout,
  type Context,
  type Policy,
} from '../../src/index.js';
import { bulwarkHandler, resilientFetch } from '../../src/http.js';
import { prometheusMetrics } from '../../src/prometheus.js';
import { sendJson, startFaultServer } from './fault-server.js';

const server = await startFaultServer();
// Every dependency() below reports here; the service at the end serves it on /metrics.
const registry = new Registry();
const metrics = prometheusMetrics({ registry });
const t0 = performance.now();
const stamp = () => `${String(Math.round(performance.now() - t0)).padStart(5)} ms`;
const log = (line: string) => console.log(`${stamp()}  ${line}`);

/** GET a JSON endpoint; non-2xx becomes an error carrying `status` and `retryAfterMs`. */
async function getJson(path: string, ctx: Context): Promise<unknown> {
  const res = await fetch(server.url + path, { signal: ctx.signal });
  if (!res.ok) {
    await res.body?.cancel();
    const retryAfter = Number(res.headers.get('retry-after'));
    throw Object.assign(new Error(`HTTP ${res.status}`), {
      status: res.status,
      retryAfterMs:
        Number.isFinite(retryAfter) && res.headers.has('retry-after')
          ? retryAfter * 1000
          : undefined,
    });
  }
  return res.json();
}

function describe(e: unknown): string {
  if (e instanceof Error) {
    const code = (e as { code?: string }).code ?? (e.cause as { code?: string } | undefined)?.code;
    return `${e.name}${code ? ` ${code}` : ''}: ${e.message}`;
  }
  return String(e);
}

function watchRetry(r: ReturnType<typeof retry>): void {
  r.on('retry', (e) =>
    log(
      `  retry: attempt ${e.attempt} in ${Math.round(e.delay)} ms (${e.reason}: ${describe(e.outcome)})`,
    ),
  );
  r.on('giveUp', (e) => log(`  retry: gave up after attempt ${e.attempt} (${e.reason})`));
  r.on('retryBudgetExhausted', () => log('  retry: retry budget exhausted, not retrying'));
}

async function scenario(
  title: string,
  policy: Policy,
  path: string,
  options?: { budget?: number },
): Promise<void> {
  console.log(`\n== ${title}`);
  const started = performance.now();
  try {
    const body = await policy.execute((ctx) => {
      log(
        `  attempt ${ctx.attempt}: GET ${path} (${Number.isFinite(ctx.deadline) ? `${Math.round(ctx.remaining())} ms left` : 'no deadline'})`,
      );
      return getJson(path, ctx);
    }, options);
    log(`=> success after ${Math.round(performance.now() - started)} ms: ${JSON.stringify(body)}`);
  } catch (e) {
    log(`=> failed after ${Math.round(performance.now() - started)} ms: ${describe(e)}`);
  }
}

try {
  const r1 = retry({ maxAttempts: 3, backoff: { initial: 50, jitter: 'none' } });
  watchRetry(r1);
  await scenario(
    'slow first response: the attempt timeout cuts it, the retry succeeds',
    pipeline(r1, timeout(150)),
    '/work?id=slow&slowFirst=2000',
  );

  const r2 = retry({ maxAttempts: 3, backoff: 50 });
  watchRetry(r2);
  await scenario(
    '503 with Retry-After: 1 — the retry waits what the server asked',
    r2,
    '/work?id=ra&fail=1&retryAfter=1',
  );

  const r3 = retry({ maxAttempts: 3, backoff: 20 });
  watchRetry(r3);
  await scenario('dropped connection: a network error is retried', r3, '/work?id=drop&drop=1');

  const r4 = retry({ maxAttempts: 10, backoff: { initial: 100, jitter: 'none' } });
  watchRetry(r4);
  await scenario(
    'a dependency that stays slow: the 600 ms budget bounds every attempt and sleep',
    pipeline(budget(600), r4, timeout(200)),
    '/work?latency=1000',
  );

  const r5 = retry({ maxAttempts: 3, backoff: 100 });
  watchRetry(r5);
  await scenario(
    'Retry-After beyond the budget: give up at once instead of sleeping past the deadline',
    r5,
    '/work?id=far&fail=5&retryAfter=30',
    { budget: 2000 },
  );

  console.log(
    '\n== outage with a shared retry budget (ratio 10 %, 2/s): 20 requests, how many reach the server?',
  );
  const shared = retryBudget({ ratio: 0.1, minPerSecond: 2, window: 1000 });
  const r6 = retry({ maxAttempts: 3, backoff: 0, retryBudget: shared });
  const before = server.hits.get('') ?? 0;
  let failed = 0;
  for (let i = 0; i < 20; i++)
    await r6.execute((ctx) => getJson('/work?down=1', ctx)).catch(() => failed++);
  const sent = (server.hits.get('') ?? 0) - before;
  log(
    `=> ${failed}/20 failed; the server saw ${sent} requests (without the budget: 60); retries refused: ${shared.exhausted}`,
  );

  console.log(
    '\n== circuit breaker: opens after 3 failures, fails fast, half-opens after 500 ms, closes on a good trial',
  );
  const breaker = circuitBreaker({ consecutiveFailures: 3, halfOpenAfter: 500, name: 'inventory' });
  breaker.on('stateChange', (e) => log(`  breaker: ${e.from} -> ${e.to}`));
  const hitsBefore = server.hits.get('*') ?? 0;
  for (let i = 1; i <= 6; i++) {
    await breaker
      .execute((ctx) => getJson('/work?down=1', ctx))
      .then(
        () => log(`  call ${i}: ok`),
        (e: unknown) => log(`  call ${i}: ${describe(e)}`),
      );
  }
  log(
    `  the server saw ${(server.hits.get('*') ?? 0) - hitsBefore} of 6 calls; the rest failed fast`,
  );
  await new Promise((r) => setTimeout(r, 550));
  await breaker
    .execute((ctx) => getJson('/work?latency=5', ctx))
    .then(
      () => log('  trial call after 500 ms: ok'),
      (e: unknown) => log(`  trial: ${describe(e)}`),
    );
  log(`=> breaker is ${breaker.state}`);

  console.log('\n== bulkhead: 2 slots + 2 queue places; 6 concurrent slow calls');
  const bh = bulkhead({ maxConcurrent: 2, maxQueue: 2, name: 'reports' });
  const results = await Promise.allSettled(
    Array.from({ length: 6 }, (_, i) =>
      bh.execute(async (ctx) => {
        log(`  call ${i + 1} running (${bh.inFlight} in flight, ${bh.queued} queued)`);
        return getJson('/work?latency=100', ctx);
      }),
    ),
  );
  results.forEach(
    (r, i) => r.status === 'rejected' && log(`  call ${i + 1}: ${describe(r.reason)}`),
  );
  log(
    `=> ${results.filter((r) => r.status === 'fulfilled').length} served, ${results.filter((r) => r.status === 'rejected').length} rejected without waiting`,
  );

  console.log('\n== load shedder: limit 4, 8 low-priority and 2 critical calls arrive together');
  const shedder = loadShedder({ limit: 4 });
  const mixed = await Promise.allSettled(
    [...Array(8).fill('low'), 'critical', 'critical'].map((priority) =>
      shedder.execute((ctx) => getJson('/work?latency=50', ctx), { priority }),
    ),
  );
  const served = (p: string) =>
    mixed.filter((r, i) => r.status === 'fulfilled' && (i < 8 ? 'low' : 'critical') === p).length;
  log(
    `=> low: ${served('low')}/8 served (low may use 50 % of the limit), critical: ${served('critical')}/2 served`,
  );

  console.log('\n== idempotency: the same key twice — the second call is a replay, fn ran once');
  const idem = idempotency({});
  idem.on('replayed', (e) => log(`  replayed stored outcome for key ${e.key}`));
  let charges = 0;
  const charge = () =>
    idem.execute(async () => ({ chargeId: `ch_${++charges}` }), { idempotencyKey: 'order-42' });
  log(`  first:  ${JSON.stringify(await charge())}`);
  log(`  second: ${JSON.stringify(await charge())}`);
  log(`=> the charge ran ${charges} time(s)`);

  console.log('\n== resilientFetch: a POST is retried only with an Idempotency-Key');
  const api = dependency('api', { budget: 2000, retry: { maxAttempts: 3, backoff: 20 } });
  const noKey = await resilientFetch(api, `${server.url}/work?id=post1&fail=1`, { method: 'POST' });
  log(
    `  POST without a key: status ${noKey.status} after ${server.hits.get('post1')} request(s) — not resent`,
  );
  await noKey.body?.cancel();
  const withKey = await resilientFetch(api, `${server.url}/work?id=post2&fail=1`, {
    method: 'POST',
    headers: { 'idempotency-key': 'pay-7' },
  });
  log(
    `  POST with a key:    status ${withKey.status} after ${server.hits.get('post2')} request(s) — retried safely`,
  );
  await withKey.body?.cancel();

  console.log(
    '\n== fallback: search is down; the caller gets a degraded answer instead of an error',
  );
  const search = dependency('search', {
    retry: { maxAttempts: 2, backoff: 20 },
    fallback: { value: { results: [], degraded: true } },
    metrics,
  });
  search.fallback?.on('fallback', (e) =>
    log(`  fallback: replaced the ${e.kind} (${describe(e.outcome)})`),
  );
  const found = await search.execute((ctx) => getJson('/work?down=1', ctx));
  log(`=> the caller got ${JSON.stringify(found)}`);

  const quotes = dependency('quotes', { hedge: { delay: 50 }, metrics });
  quotes.hedge?.on('hedge', (e) => log(`  hedge: attempt ${e.attempt} started (${e.reason})`));
  quotes.hedge?.on('win', (e) =>
    log(`  hedge: attempt ${e.attempt} answered first of ${e.started}; the other is aborted`),
  );
  console.log(
    '\n== hedge: the first request is stuck for 1 s; a second one sent after 50 ms answers',
  );
  const hedgeStart = performance.now();
  let requests = 0;
  const quote = await quotes.execute((ctx) => {
    log(`  request ${++requests}: GET /work?id=hedge&slowFirst=1000`);
    return getJson('/work?id=hedge&slowFirst=1000', ctx);
  });
  log(
    `=> ${JSON.stringify(quote)} after ${Math.round(performance.now() - hedgeStart)} ms instead of 1000 ms`,
  );

  await inboundDemo();
} finally {
  await server.close();
}

/**
 * A checkout service guarded by `bulwarkHandler`: it reads the caller's deadline header,
 * sheds load with 503 + Retry-After, and serves /metrics unguarded.
 */
async function inboundDemo(): Promise<void> {
  const inventory = dependency('inventory', { retry: { maxAttempts: 2, backoff: 20 }, metrics });
  const guarded = bulwarkHandler(
    async (req, res, ctx) => {
      const budgetLeft = Number.isFinite(ctx.deadline)
        ? `${Math.round(ctx.remaining())} ms left`
        : 'no deadline';
      log(`  service: ${req.url} arrived with ${budgetLeft}`);
      const query = new URL(req.url ?? '/', 'http://service').search;
      // No budget or signal passed: the call inherits the request's deadline and abort.
      sendJson(res, 200, await inventory.execute((c) => getJson(`/work${query}`, c)));
    },
    { loadShedder: { limit: 5 } },
  );
  const service = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.url !== '/metrics') return guarded(req, res);
    void registry.metrics().then((text) => {
      res.writeHead(200, { 'content-type': registry.contentType });
      res.end(text);
    });
  });
  await new Promise<void>((resolve) => service.listen(0, '127.0.0.1', resolve));
  const serviceUrl = `http://127.0.0.1:${(service.address() as AddressInfo).port}`;
  try {
    console.log(
      '\n== inbound deadline: a caller with 150 ms left asks the service for a 1 s inventory call',
    );
    const started = performance.now();
    const late = await fetch(`${serviceUrl}/stock?latency=1000`, {
      headers: { 'x-bulwark-deadline-ms': '150' },
    });
    await late.body?.cancel();
    log(
      `=> ${late.status} after ${Math.round(performance.now() - started)} ms: the inventory call ended at the caller's deadline, not at its own 10 s budget`,
    );

    console.log(
      '\n== inbound shedding: limit 5 (normal priority may use 80 %), 6 requests at once',
    );
    const answers = await Promise.all(
      Array.from({ length: 6 }, () =>
        fetch(`${serviceUrl}/stock?latency=300`).then(async (r) => {
          await r.body?.cancel();
          if (r.status !== 200)
            log(`  ${r.status} with Retry-After: ${r.headers.get('retry-after')}`);
          return r.status;
        }),
      ),
    );
    log(
      `=> ${answers.filter((status) => status === 200).length} served, ${answers.filter((status) => status === 503).length} shed with 503 before any work`,
    );

    console.log(
      '\n== metrics: GET /metrics on the service (the calls of search, quotes, inventory)',
    );
    const text = await (await fetch(`${serviceUrl}/metrics`)).text();
    const shown = text
      .split('\n')
      .filter((l) => /^bulwark_(calls|retries)_total\{/.test(l) && !l.endsWith(' 0'));
    for (const line of shown) log(`  ${line}`);
    log(
      `=> ${text.split('\n').filter((l) => l.startsWith('bulwark_')).length} bulwark_ samples scraped`,
    );
  } finally {
    await new Promise<void>((resolve) => {
      service.closeAllConnections();
      service.close(() => resolve());
    });
  }
}
