/**
 * groupRanges (shard-plan.ts) decided while node starts are still arriving: range s ends at the
 * first node whose start offset reaches E·s/count, so it is final as soon as such a node has
 * been seen, and the last range at the end of the input. Fed every node start of a sorted edge
 * list in order, it yields exactly groupRanges' ranges — the shard layout, and so the merged
 * sums, stay bit-identical however the file was read.
 */
export class RangePlanner {
  private s = 1;
  private start = 0;
  private end = 1;

  constructor(
    /** E: the edge count, known up front (a .npy header states it). */
    private readonly total: number,
    private readonly count: number,
  ) {}

  /**
   * The ranges now final, given the start offsets of the first `known` nodes; with `ended`,
   * `known` is every node and the rest is decided.
   */
  next(offsets: ArrayLike<number>, known: number, ended: boolean): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    while (this.s <= this.count && this.start < known) {
      const target = (this.total * this.s) / this.count;
      while (this.end < known && offsets[this.end] < target) this.end++;
      if (this.s === this.count) {
        if (!ended) break;
        this.end = known;
      } else if (this.end === known && !ended) break;
      out.push([this.start, this.end]);
      this.start = this.end;
      this.end = this.start + 1;
      this.s++;
    }
    return out;
  }
}
