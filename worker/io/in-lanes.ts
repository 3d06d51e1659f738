/**
 * Runs `run(k)` for k in [0, count), at most `width` at a time, each lane taking the next k
 * as it frees up. Reads issued one awaited at a time leave the disk, or a server an ocean
 * away, idle between requests; issued all at once they flood it.
 */
export async function inLanes(count: number, width: number, run: (k: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < count) await run(next++);
  };
  await Promise.all(Array.from({ length: Math.min(width, count) }, lane));
}
