import type { OutcomeWindow } from './window.js';

const FAILED = 1;
const SLOW = 2;

/**
 * The last `size` outcomes, one byte each in a ring, with running totals: the byte
 * leaving the ring is subtracted as the new one is added, so a call costs O(1) whatever
 * the size.
 */
export class CountWindow implements OutcomeWindow {
  calls = 0;
  failures = 0;
  slow = 0;
  private readonly ring: Uint8Array;
  private next = 0;

  constructor(readonly size: number) {
    this.ring = new Uint8Array(size);
  }

  get timed(): boolean {
    return false;
  }

  record(_now: number, failed: boolean, slow: boolean): void {
    const ring = this.ring;
    const i = this.next;
    if (this.calls === this.size) {
      const old = ring[i]!;
      if ((old & FAILED) !== 0) this.failures--;
      if ((old & SLOW) !== 0) this.slow--;
    } else {
      this.calls++;
    }
    ring[i] = (failed ? FAILED : 0) | (slow ? SLOW : 0);
    if (failed) this.failures++;
    if (slow) this.slow++;
    this.next = i + 1 === this.size ? 0 : i + 1;
  }

  roll(): void {
    // Nothing ages out of a count window.
  }

  reset(): void {
    this.ring.fill(0);
    this.next = 0;
    this.calls = 0;
    this.failures = 0;
    this.slow = 0;
  }
}
