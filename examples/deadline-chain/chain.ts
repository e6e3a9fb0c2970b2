/**
 * Deadline propagation through three local services, A → B → C. A caller gives A a
 * budget in `x-bulwark-deadline-ms`; each service's `bulwarkHandler` starts the request's
 * context from it, and every `resilientFetch` made inside the handler inherits what is
 * left and sends that on (minus a 10 ms margin). No service passes a context by hand.
 * C answers with the budget it saw, so the shrinking is visible end to end; a call that
 * could not finish in time is cut off everywhere at once instead of working for nobody.
 * Run it: `tsx examples/deadline-chain/chain.ts`.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dependency, type Context } from '../../src/index.js';
import { DEADLINE_HEADER, bulwarkHandler, resilientFetch } from '../../src/http.js';

export interface Hop {
  service: string;
  /** ms the service had left when the request arrived. */
  budget: number;
}

export interface Chain {
  /** Calls A with `budgetMs`; returns what every hop saw, A first. */
  call(budgetMs: number, workMs?: number): Promise<{ status: number; hops: Hop[] }>;
  close(): Promise<void>;
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const sleep = (ms: number, ctx: Context) =>
  new Promise<void>((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    ctx.signal.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        reject(ctx.signal.reason);
      },
      { once: true },
    );
  });

/** One service: does `work` ms of its own work, then calls `next` (if any) and reports. */
function service(name: string, next: string | undefined): Server {
  const downstream = dependency(`${name}-downstream`, { budget: '30s' });
  return createServer(
    bulwarkHandler(async (req, res, ctx) => {
      const hop: Hop = { service: name, budget: Math.round(ctx.remaining()) };
      const work = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('work') ?? 0);
      await sleep(work, ctx);
      let hops: Hop[] = [];
      let status = 200;
      if (next !== undefined) {
        const r = await resilientFetch(downstream, `${next}/?work=${work}`);
        status = r.status;
        hops = ((await r.json()) as { hops?: Hop[] }).hops ?? [];
      }
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ hops: [hop, ...hops] }));
    }),
  );
}

export async function startChain(): Promise<Chain> {
  const c = service('C', undefined);
  const cUrl = await listen(c);
  const b = service('B', cUrl);
  const bUrl = await listen(b);
  const a = service('A', bUrl);
  const aUrl = await listen(a);
  const servers = [a, b, c];
  return {
    async call(budgetMs, workMs = 50) {
      const res = await fetch(`${aUrl}/?work=${workMs}`, {
        headers: { [DEADLINE_HEADER]: String(budgetMs) },
      });
      const body = (await res.json()) as { hops?: Hop[] };
      return { status: res.status, hops: body.hops ?? [] };
    },
    close: async () => {
      for (const s of servers) {
        s.closeAllConnections();
        await new Promise<void>((resolve) => s.close(() => resolve()));
      }
    },
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const chain = await startChain();
  const ok = await chain.call(1000);
  console.log('budget 1000 ms, 50 ms of work per hop:');
  for (const hop of ok.hops) console.log(`  ${hop.service} started with ${hop.budget} ms`);
  const late = await chain.call(120);
  console.log(
    `budget 120 ms: A answered ${late.status} (the deadline passed in C; every hop stopped)`,
  );
  await chain.close();
}
