/** Node fires a timer longer than 2³¹−1 ms (24.8 days) at once; longer waits are chained in steps of that. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A handle whose `clear()` cancels the wait, whichever link of the chain is pending. */
export interface LongTimeout {
  clear(): void;
}

/** Calls `fn` after `ms` milliseconds, for any `ms` (a 40-day gRPC deadline included). */
export function setLongTimeout(fn: () => void, ms: number): LongTimeout {
  let timer: NodeJS.Timeout;
  const arm = (remaining: number) => {
    timer = remaining > MAX_TIMER_MS ? setTimeout(() => arm(remaining - MAX_TIMER_MS), MAX_TIMER_MS) : setTimeout(fn, Math.max(0, remaining));
  };
  arm(ms);
  return { clear: () => clearTimeout(timer) };
}
