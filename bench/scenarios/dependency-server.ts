/**
 * The downstream dependency of the scenario benchmarks: a real node:http server on
 * 127.0.0.1, run as a child process of run.ts so that its event loop is not the client's.
 * It is driven over IPC only:
 *
 *   parent → { type: 'configure', config }   → child answers { type: 'listening', port }
 *   parent → { type: 'start', phases }        the fault schedule starts now (t = 0)
 *   parent → { type: 'stats' }                → child answers { type: 'stats', stats }
 *
 * Model: `slots` workers behind one FIFO queue with no bound, like a naive server. A
 * request's completion time is fixed on arrival (start = when the earliest slot frees),
 * and the work is done whether or not the client is still there: that is how a naive
 * server wastes capacity on requests its callers gave up on. Slots are held by timers,
 * not busy CPU, so capacity does not depend on what else runs on this shared machine.
 *
 * Fault modes, switched at the times the schedule gives:
 *   ok       answer 200 after a sampled latency (× latencyFactor); with errorRate, that
 *            share of requests answers 503 instead, after the same latency (a struggling
 *            server is slow to fail too)
 *   error    every request gets 503 at once (a process up but failing)
 *            (capacityFrom/rampMs: less capacity at first, regained linearly)
 *   refuse   the listening socket is closed and every open connection destroyed: new
 *            connections get ECONNREFUSED (a crashed process); the port is bound again
 *            when the next phase starts
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { seededRandom } from '../../src/testing/seeded-random.js';

export type FaultMode = 'ok' | 'error' | 'refuse';

export interface ServerPhase {
  /** ms after start. */
  at: number;
  mode: FaultMode;
  /** Service time multiplier in mode 'ok' (default 1). */
  latencyFactor?: number;
  /** Share of requests answered 503 in mode 'ok' (default 0). */
  errorRate?: number;
  /**
   * Mode 'ok' at reduced capacity: service times are divided by a capacity share that starts
   * at `capacityFrom` (0..1) and grows linearly to 1 over `rampMs` (a dependency coming back
   * with cold caches and a few instances).
   */
  capacityFrom?: number;
  rampMs?: number;
}

export type LatencyModel =
  | { kind: 'constant'; ms: number }
  /** Log-normal service time given by its median and 99th percentile. */
  | { kind: 'lognormal'; median: number; p99: number };

export interface ServerConfig {
  /** Requests served at once; the rest wait in a FIFO queue without bound. */
  slots: number;
  latency: LatencyModel;
  seed: number;
}

export interface ServerStats {
  /** Requests that reached the handler, per 100 ms bucket since start. */
  arrivals: number[];
  received: number;
  served200: number;
  served503: number;
  /** Work finished for a client that had already gone (aborted or timed out). */
  wasted: number;
  /** Worst event-loop delay seen (ms): how much the shared CPU got in the way. */
  loopMaxMs: number;
}

export type ServerMessage =
  | { type: 'configure'; config: ServerConfig }
  | { type: 'start'; phases: ServerPhase[] }
  | { type: 'stats' };

export type ServerReply =
  { type: 'listening'; port: number } | { type: 'stats'; stats: ServerStats };

function sampler(model: LatencyModel, random: () => number): () => number {
  if (model.kind === 'constant') return () => model.ms;
  // z of the 99th percentile of the standard normal.
  const sigma = Math.log(model.p99 / model.median) / 2.3263;
  return () => {
    const u = Math.max(random(), 1e-12);
    const z = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
    return model.median * Math.exp(sigma * z);
  };
}

const BUCKET_MS = 100;

function serve(config: ServerConfig): void {
  const random = seededRandom(config.seed);
  const latency = sampler(config.latency, random);
  const freeAt: number[] = Number.isFinite(config.slots)
    ? Array.from({ length: config.slots }, () => 0)
    : [];
  const sockets = new Set<Socket>();
  const stats: ServerStats = {
    arrivals: [],
    received: 0,
    served200: 0,
    served503: 0,
    wasted: 0,
    loopMaxMs: 0,
  };
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  let t0 = performance.now();
  let started = false;
  let phase: ServerPhase = { at: 0, mode: 'ok' };
  let phaseStart = 0;
  let port = 0;

  /** When a job arriving now finishes, taking the earliest free slot. */
  const admit = (ms: number): number => {
    const now = performance.now();
    if (freeAt.length === 0) return now + ms;
    let slot = 0;
    for (let i = 1; i < freeAt.length; i++) if (freeAt[i]! < freeAt[slot]!) slot = i;
    const done = Math.max(now, freeAt[slot]!) + ms;
    freeAt[slot] = done;
    return done;
  };

  const reply = (res: ServerResponse, status: number) => {
    if (res.destroyed || res.writableEnded) {
      stats.wasted++;
      return;
    }
    if (status === 200) stats.served200++;
    else stats.served503++;
    res.writeHead(status, { 'content-type': 'text/plain', 'content-length': '2' });
    res.end(status === 200 ? 'ok' : 'no');
  };

  const server = http.createServer((req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    stats.received++;
    if (started) {
      const b = Math.floor((performance.now() - t0) / BUCKET_MS);
      stats.arrivals[b] = (stats.arrivals[b] ?? 0) + 1;
    }
    if (phase.mode === 'error') {
      reply(res, 503);
      return;
    }
    let factor = phase.latencyFactor ?? 1;
    if (phase.capacityFrom !== undefined) {
      const progress = Math.min(1, (performance.now() - phaseStart) / (phase.rampMs ?? 1));
      factor /= phase.capacityFrom + (1 - phase.capacityFrom) * progress;
    }
    const fails = (phase.errorRate ?? 0) > 0 && random() < phase.errorRate!;
    const doneAt = admit(latency() * factor);
    // The timer is deliberately not cleared when the client goes: the naive server
    // finishes the work anyway, and `reply` counts it as wasted.
    setTimeout(() => reply(res, fails ? 503 : 200), Math.max(0, doneAt - performance.now()));
  });
  server.keepAliveTimeout = 30_000;
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('clientError', (_err, socket) => socket.destroy());

  const listen = () =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: '127.0.0.1', port, backlog: 4096 }, () => {
        server.off('error', reject);
        port = (server.address() as AddressInfo).port;
        resolve();
      });
    });

  const enter = (next: ServerPhase) => {
    const was = phase.mode;
    phase = next;
    phaseStart = performance.now();
    if (next.mode === 'refuse' && was !== 'refuse') {
      server.close();
      for (const s of sockets) s.destroy();
      sockets.clear();
      // A crashed process loses its queue with it.
      freeAt.fill(0);
    } else if (next.mode !== 'refuse' && was === 'refuse') {
      listen().catch((error: unknown) => {
        process.stderr.write(
          `dependency-server: cannot listen again on ${port}: ${String(error)}\n`,
        );
        process.exit(1);
      });
    }
  };

  process.on('message', (m: ServerMessage) => {
    if (m.type === 'start') {
      t0 = performance.now();
      started = true;
      for (const p of m.phases) {
        if (p.at <= 0) enter(p);
        else setTimeout(() => enter(p), p.at);
      }
    } else if (m.type === 'stats') {
      stats.loopMaxMs = loop.max / 1e6;
      for (let i = 0; i < stats.arrivals.length; i++) stats.arrivals[i] ??= 0;
      send({ type: 'stats', stats });
    }
  });

  listen().then(
    () => send({ type: 'listening', port }),
    (error: unknown) => {
      process.stderr.write(`dependency-server: ${String(error)}\n`);
      process.exit(1);
    },
  );
}

function send(m: ServerReply): void {
  process.send?.(m);
}

// Run as a child of run.ts: wait for the configuration, and die with the parent.
if (process.send !== undefined && process.argv.includes('--dependency-server')) {
  process.on('disconnect', () => process.exit(0));
  process.once('message', (m: ServerMessage) => {
    if (m.type === 'configure') serve(m.config);
  });
}
