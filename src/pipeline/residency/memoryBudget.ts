import { totalmem } from 'node:os';

/** What `--memory-budget` says: no budget (load everything, as before budgets existed), the machine's, or a size. */
export type MemoryBudgetSetting = { kind: 'unlimited' } | { kind: 'auto' } | { kind: 'bytes'; bytes: number };

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1e3, kb: 1e3, m: 1e6, mb: 1e6, g: 1e9, gb: 1e9, t: 1e12, tb: 1e12, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40 };

/**
 * Left out of `auto`: ONNX Runtime's activations, the process and the OS need memory beyond the
 * weights. At SD 1.5's size the first 2-row request took RSS from the weights' 5.1 GiB to 10.7 GiB
 * on CPU (docs/performance.md, "The engine at real size").
 */
export const AUTO_MARGIN_FRACTION = 0.25;
export const AUTO_MARGIN_MIN_BYTES = 2 * 2 ** 30;

/** '' (none), 'auto', or a size: 25769803776, 24GiB, 24G, 1.5GB (G is 10^9, GiB 2^30). Throws a message naming the accepted forms. */
export function parseMemoryBudget(raw: string): MemoryBudgetSetting {
  const text = raw.trim().toLowerCase();
  if (text === '' || text === 'none') return { kind: 'unlimited' };
  if (text === 'auto') return { kind: 'auto' };
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/.exec(text);
  const unit = match ? UNITS[match[2]] : undefined;
  if (!match || unit === undefined) throw new Error(`must be auto, none, or a size such as 24GiB, 24G or 25769803776; got ${JSON.stringify(raw)}`);
  const bytes = Math.floor(Number(match[1]) * unit);
  if (bytes <= 0) throw new Error(`must be more than 0 bytes; got ${JSON.stringify(raw)}`);
  return { kind: 'bytes', bytes };
}

/** The memory this process may use: a cgroup limit where one is set (containers), else the machine's. */
export function machineMemoryBytes(): number {
  const constrained = (process as { constrainedMemory?: () => number | undefined }).constrainedMemory?.();
  const total = totalmem();
  // Node reports no limit as 0, or as a huge number on cgroup v2 without memory.max.
  return constrained && constrained > 0 && constrained < total ? constrained : total;
}

/** The budget in bytes, or null for no budget. */
export function resolveMemoryBudget(setting: MemoryBudgetSetting, machineBytes = machineMemoryBytes()): number | null {
  if (setting.kind === 'unlimited') return null;
  if (setting.kind === 'bytes') return setting.bytes;
  return Math.max(0, machineBytes - Math.max(AUTO_MARGIN_MIN_BYTES, machineBytes * AUTO_MARGIN_FRACTION));
}

export function formatBytes(bytes: number): string {
  return bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(2)} GiB` : `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}
