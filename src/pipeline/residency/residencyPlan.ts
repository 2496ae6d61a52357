/** A loaded bundle as the residency plan sees it. */
export interface ResidentBundle {
  name: string;
  /** Sequences holding it (generating, or admitted and waiting for a slot): never unloaded while above 0. */
  users: number;
  /** When its last user let go (or it loaded); the least recent idle bundle is unloaded first. */
  lastUsed: number;
  /** Pool keys of its models; bundles share the keys of shared files. */
  models: readonly string[];
}

export interface ResidencyLimits {
  /** Bytes of weights all loaded bundles may hold together; null: no budget. */
  budgetBytes: number | null;
  /** Most bundles loaded at once; null: no limit. */
  maxLoaded: number | null;
}

export type LoadPlan =
  /** Load once these idle bundles (possibly none) are unloaded, least recently used first. */
  | { kind: 'load'; evict: string[] }
  /** Not enough idle bundles to make room now: wait until a loaded bundle's last user lets go. */
  | { kind: 'wait' }
  /** It can never fit, even alone. */
  | { kind: 'never'; reason: string };

/**
 * What must leave for `candidate` to load within the limits. `cost` weighs a set of model keys
 * (each counted once, however many bundles share it, times the copies the executors hold).
 */
export function planLoad(candidate: { name: string; models: readonly string[] }, loaded: readonly ResidentBundle[], limits: ResidencyLimits, cost: (keys: ReadonlySet<string>) => number): LoadPlan {
  const alone = cost(new Set(candidate.models));
  if (limits.budgetBytes !== null && alone > limits.budgetBytes) return { kind: 'never', reason: `it needs ${alone} bytes alone, more than the memory budget of ${limits.budgetBytes}` };
  const staying = loaded.filter((b) => b.name !== candidate.name);
  const fits = () => {
    if (limits.maxLoaded !== null && staying.length + 1 > limits.maxLoaded) return false;
    if (limits.budgetBytes === null) return true;
    return cost(new Set([...candidate.models, ...staying.flatMap((b) => b.models)])) <= limits.budgetBytes;
  };
  const evict: string[] = [];
  const idle = staying.filter((b) => b.users === 0).sort((a, b) => a.lastUsed - b.lastUsed);
  while (!fits()) {
    const victim = idle.shift();
    if (!victim) return { kind: 'wait' };
    staying.splice(staying.indexOf(victim), 1);
    evict.push(victim.name);
  }
  return { kind: 'load', evict };
}
