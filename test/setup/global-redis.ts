import { spawnSync, type ChildProcess } from 'node:child_process';
import type { TestProject } from 'vitest/node';
import { freePort } from '../support/net.js';
import { startRedisServer, stopRedisServer } from '../support/redis-server.js';

/**
 * Starts one throwaway redis-server on 127.0.0.1 for the whole run (no persistence),
 * hands its port to tests through `inject('redisPort')`, and stops it by PID.
 * Without the binary, Redis tests are skipped with the reason — except under CI=true,
 * where a missing server is a failure: CI must always run them.
 */
declare module 'vitest' {
  export interface ProvidedContext {
    redisPort: number;
    redisMissing: string;
  }
}

let child: ChildProcess | undefined;

export async function setup(project: TestProject): Promise<void> {
  const found = spawnSync('redis-server', ['--version'], { stdio: 'ignore' });
  if (found.error || found.status !== 0) {
    const why = 'redis-server is not installed (run .ci/run, or apt-get install redis-server)';
    if (process.env.CI === 'true')
      throw new Error(`CI=true: ${why}; integration tests must run in CI`);
    project.provide('redisPort', 0);
    project.provide('redisMissing', why);
    return;
  }
  const port = await freePort();
  child = await startRedisServer(port);
  project.provide('redisPort', port);
  project.provide('redisMissing', '');
}

export async function teardown(): Promise<void> {
  await stopRedisServer(child);
}
