import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startChain, type Chain } from './chain.js';

let chain: Chain;
beforeAll(async () => {
  chain = await startChain();
});
afterAll(() => chain.close());

describe('examples/deadline-chain', () => {
  it('gives each hop less budget than the one before it, C least of all', async () => {
    const { status, hops } = await chain.call(1000, 50);
    expect(status).toBe(200);
    expect(hops.map((h) => h.service)).toEqual(['A', 'B', 'C']);
    const [a, b, c] = hops.map((h) => h.budget) as [number, number, number];
    expect(a).toBeLessThanOrEqual(1000);
    // Each hop spent 50 ms of work and 10 ms of margin before calling the next.
    expect(b).toBeLessThanOrEqual(a - 60);
    expect(c).toBeLessThanOrEqual(b - 60);
  });

  it('answers 504 when the budget runs out part-way down the chain', async () => {
    const start = performance.now();
    const { status } = await chain.call(120, 50);
    expect(status).toBe(504);
    expect(performance.now() - start).toBeLessThan(1000);
  });
});
