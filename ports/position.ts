const MAX_XID8 = 2n ** 64n - 1n;
const MAX_BIGINT = 2n ** 63n - 1n;

/**
 * A place in the event log's commit order: (epoch, transaction id, sequence). Written as
 * `epoch:txid:seq`, the form a command answers with and a query may wait for.
 */
export class GlobalPosition {
  static readonly start = new GlobalPosition(0, 0n, 0n);
  private static readonly pattern = /^(\d{1,9}):(\d{1,20}):(\d{1,20})$/;

  constructor(
    readonly epoch: number,
    readonly txId: bigint,
    readonly seq: bigint,
  ) {}

  static parse(text: string): GlobalPosition {
    const m = GlobalPosition.pattern.exec(text.trim());
    if (!m) throw new RangeError(`not an event log position: ${JSON.stringify(text.slice(0, 64))} (expected epoch:txid:seq)`);
    const [epoch, txId, seq] = [Number(m[1]), BigInt(m[2]!), BigInt(m[3]!)];
    // The columns' own ranges (integer, xid8, bigint): a position beyond them was never written.
    if (txId > MAX_XID8 || seq > MAX_BIGINT) throw new RangeError(`not an event log position: ${JSON.stringify(text.slice(0, 64))} is out of range`);
    return new GlobalPosition(epoch, txId, seq);
  }

  compare(other: GlobalPosition): number {
    if (this.epoch !== other.epoch) return this.epoch < other.epoch ? -1 : 1;
    if (this.txId !== other.txId) return this.txId < other.txId ? -1 : 1;
    if (this.seq !== other.seq) return this.seq < other.seq ? -1 : 1;
    return 0;
  }

  isAtOrAfter(other: GlobalPosition): boolean {
    return this.compare(other) >= 0;
  }

  toString(): string {
    return `${this.epoch}:${this.txId}:${this.seq}`;
  }

  toJSON(): string {
    return this.toString();
  }
}
