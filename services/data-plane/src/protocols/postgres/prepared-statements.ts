import type { StatementSummary } from './statement-audit';

/**
 * What the proxy remembers of the statements a client prepared with Parse:
 * the audit summary of the SQL it was judged on. A Bind is never re-judged:
 * every statement that exists on the backend got there through the proxy and
 * was judged when it was made (a Parse by its text, an SQL `PREPARE` as the
 * statement it prepares), so the registry only supplies the audit trail of
 * each execution. Bounded by entries and by the characters of their (capped)
 * SQL texts: past either bound the oldest entries are forgotten, which only
 * costs their executions the SQL text in the audit record.
 *
 * @see https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-EXT-QUERY
 */
export class PreparedStatements {
  private readonly entries = new Map<string, StatementSummary>();
  private chars = 0;

  constructor(
    private readonly maxEntries: number = 1_000,
    private readonly maxChars: number = 1024 * 1024,
  ) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new RangeError('maxEntries must be a positive integer.');
  }

  get size(): number {
    return this.entries.size;
  }

  /** Records a statement the backend is about to prepare (a Parse that was allowed). */
  set(name: string, summary: StatementSummary): void {
    this.delete(name);
    this.entries.set(name, summary);
    this.chars += name.length + summary.sql.length;
    for (const [oldest] of this.entries) {
      if (this.entries.size <= this.maxEntries && this.chars <= this.maxChars) break;
      this.delete(oldest);
    }
  }

  get(name: string): StatementSummary | undefined {
    return this.entries.get(name);
  }

  /** A Close of a statement. */
  delete(name: string): void {
    const old = this.entries.get(name);
    if (!old) return;
    this.entries.delete(name);
    this.chars -= name.length + old.sql.length;
  }

  /**
   * SQL `DEALLOCATE`, `DISCARD` or `PREPARE` ran: names may now refer to
   * statements the proxy did not see by name, so forget every named one (the
   * unnamed statement is not affected by SQL commands).
   */
  forgetNamed(): void {
    const unnamed = this.entries.get('');
    this.entries.clear();
    this.chars = 0;
    if (unnamed) this.set('', unnamed);
  }
}
