import { rint } from './buckets.js';

/**
 * Python's `round(x, p)`: the decimal nearest to the exact binary value of x, ties to even.
 * `toFixed` is exact but breaks ties upwards, so a tie is detected on the exact expansion
 * (toFixed with up to 100 digits is exact for any x the NFD sees) and sent to the even digit.
 */
export function roundDecimal(x: number, p: number): number {
  if (p === 0) return rint(x);
  const exact = x.toFixed(Math.min(100, p + 80));
  const dot = exact.indexOf('.');
  const tail = exact.slice(dot + 1 + p);
  if (/^50*$/.test(tail)) {
    const kept = exact.slice(0, dot + 1 + p);
    const last = kept.charCodeAt(kept.length - 1) - 48;
    if (last % 2 === 0) return Number(kept);
  }
  return Number(x.toFixed(p));
}
