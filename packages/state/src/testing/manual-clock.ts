import type { Clock } from '../clock';

/** A clock tests move by hand (test support; not exported from the package). */
export interface ManualClock {
  readonly now: Clock;
  advance(ms: number): void;
}

/** A manual clock starting at `start` (a fixed, realistic epoch time). */
export const createManualClock = (start = 1_700_000_000_000): ManualClock => {
  let t = start;
  return {
    now: () => t,
    advance: (ms) => {
      t += ms;
    },
  };
};
