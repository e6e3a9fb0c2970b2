import { afterEach, describe, expect, it } from 'vitest';
import { EventLoopDelayProbe } from '../../../src/policies/load-shedder/pressure.js';

const proc = process as { getBuiltinModule?: unknown };
const original = Object.getOwnPropertyDescriptor(process, 'getBuiltinModule');

afterEach(() => {
  if (original) Object.defineProperty(process, 'getBuiltinModule', original);
});

const histogramOf = (p: EventLoopDelayProbe) => (p as unknown as { histogram?: unknown }).histogram;

describe('EventLoopDelayProbe: loading perf_hooks on first read', () => {
  // Runs first in this file: the module-level monitor is still unloaded.
  it('on Node without getBuiltinModule, reads 0 while perf_hooks loads, then starts its monitor', async () => {
    Object.defineProperty(process, 'getBuiltinModule', { value: undefined, configurable: true });
    expect(proc.getBuiltinModule).toBeUndefined();
    const probe = new EventLoopDelayProbe(10, 1000, 0);
    expect(probe.eventLoopDelay()).toBe(0);
    expect(histogramOf(probe)).toBeUndefined();
    await import('node:perf_hooks');
    await new Promise((resolve) => setImmediate(resolve));
    expect(probe.eventLoopDelay()).toBe(0);
    expect(histogramOf(probe)).toBeDefined();
    expect(probe.eventLoopDelay()).toBeGreaterThanOrEqual(0);
  });

  it('once perf_hooks is loaded, a new probe starts its monitor on its first read', () => {
    const probe = new EventLoopDelayProbe(10, 1000, 0);
    expect(probe.eventLoopDelay()).toBe(0);
    expect(histogramOf(probe)).toBeDefined();
  });
});
