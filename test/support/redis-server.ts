import { spawn, type ChildProcess } from 'node:child_process';
import { waitForPort } from './net.js';

/** How a test's own redis-server differs from the default (no persistence at all). */
export interface RedisServerOptions {
  /** Working directory for its files (append-only log, cluster config). */
  dir?: string;
  /** Append-only persistence with an fsync on every write, so a SIGKILL loses nothing. */
  appendOnly?: boolean;
  /** Further `--name value` arguments (e.g. cluster mode). */
  args?: readonly string[];
}

/** Spawns a redis-server on 127.0.0.1:`port` without waiting for it to listen. */
export function spawnRedisServer(port: number, options: RedisServerOptions = {}): ChildProcess {
  const persistence = options.appendOnly
    ? ['--appendonly', 'yes', '--appendfsync', 'always']
    : ['--appendonly', 'no'];
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    ...(options.dir === undefined ? [] : ['--dir', options.dir]),
    ...(options.args ?? []),
    '--save',
    '',
    ...persistence,
    '--protected-mode',
    'no',
  ];
  return spawn('redis-server', args, { stdio: 'ignore' });
}

/** Spawns a redis-server on 127.0.0.1:`port` and resolves once it accepts connections. */
export async function startRedisServer(
  port: number,
  options: RedisServerOptions = {},
): Promise<ChildProcess> {
  const child = spawnRedisServer(port, options);
  try {
    await waitForPort(port, 10_000);
  } catch (error) {
    await killRedisServer(child);
    throw error;
  }
  return child;
}

const running = (child: ChildProcess | undefined): child is ChildProcess & { pid: number } =>
  child?.pid !== undefined && child.exitCode === null && child.signalCode === null;

/** Kills a server at once (SIGCONT first, in case a test froze it) and waits for its exit. */
export async function killRedisServer(child: ChildProcess | undefined): Promise<void> {
  if (!running(child)) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  process.kill(child.pid, 'SIGCONT');
  process.kill(child.pid, 'SIGKILL');
  await exited;
}

/** Stops a server politely (SIGTERM), and with SIGKILL if it has not exited after 3 s. */
export async function stopRedisServer(child: ChildProcess | undefined): Promise<void> {
  if (!running(child)) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  process.kill(child.pid, 'SIGTERM');
  await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
  if (running(child)) process.kill(child.pid, 'SIGKILL');
}
