import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort, waitForPort } from '../support/net.js';
import { spawnRedisServer, stopRedisServer } from '../support/redis-server.js';

/**
 * A throwaway three-master Redis Cluster on 127.0.0.1 (no replicas, no persistence),
 * started from the suite itself: three `redis-server --cluster-enabled yes` on free ports
 * (client and bus port both chosen, so nothing collides with other servers), joined by
 * `redis-cli --cluster create`, and stopped by PID. Takes about a second.
 */
export interface RedisCluster {
  /** The masters' client ports. */
  readonly ports: readonly number[];
  /** Stops every node by PID and removes their files. */
  stop(): Promise<void>;
}

function run(cmd: string, args: string[], ms: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${cmd} ${args.join(' ')} did not finish within ${ms} ms: ${out}`));
    }, ms);
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${cmd} exited with ${code}: ${out}`));
    });
  });
}

export async function startRedisCluster(): Promise<RedisCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'bulwark-cluster-'));
  const nodes: ChildProcess[] = [];
  const ports: number[] = [];
  const stop = async () => {
    await Promise.all(nodes.map(stopRedisServer));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      const bus = await freePort();
      ports.push(port);
      nodes.push(
        spawnRedisServer(port, {
          dir,
          args: [
            '--cluster-port',
            String(bus),
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            join(dir, `nodes-${port}.conf`),
            '--cluster-node-timeout',
            '5000',
          ],
        }),
      );
    }
    await Promise.all(ports.map((p) => waitForPort(p, 10_000)));
    await run(
      'redis-cli',
      [
        '--cluster',
        'create',
        ...ports.map((p) => `127.0.0.1:${p}`),
        '--cluster-replicas',
        '0',
        '--cluster-yes',
      ],
      20_000,
    );
    // Every node must see all slots covered before clients are pointed at it.
    const until = Date.now() + 15_000;
    for (const port of ports) {
      const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true });
      await probe.connect();
      try {
        for (;;) {
          const info = String(await probe.cluster('INFO'));
          if (info.includes('cluster_state:ok')) break;
          if (Date.now() > until) throw new Error(`cluster node ${port} not ok: ${info}`);
          await new Promise((r) => setTimeout(r, 50));
        }
      } finally {
        probe.disconnect();
      }
    }
    return { ports, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
