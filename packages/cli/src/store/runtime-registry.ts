import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { ensurePrivateDir, writeFileAtomic } from './atomic-file';
import { isProcessAlive } from './file-lock';

/** What a running `pa connect` records about itself, for `pa status`. */
export const activeTunnelSchema = z.object({
  pid: z.number().int().positive(),
  connection: z.string(),
  protocol: z.string(),
  address: z.string(),
  port: z.number().int(),
  context: z.string(),
  startedAt: z.string(),
  grantExpiresAt: z.string().nullable(),
});

export type ActiveTunnel = z.infer<typeof activeTunnelSchema>;

/**
 * The records of running `pa connect` processes: one file per process in
 * `<config dir>/run/`, so concurrent processes never rewrite each other's
 * entries. A record whose process is gone is stale and removed when listed.
 */
export class RuntimeRegistry {
  readonly dir: string;

  constructor(
    configDir: string,
    private readonly isAlive: (pid: number) => boolean = isProcessAlive,
  ) {
    this.dir = join(configDir, 'run');
  }

  private fileOf(pid: number): string {
    return join(this.dir, `connect-${pid}.json`);
  }

  /** Records (or updates) a running tunnel. */
  record(entry: ActiveTunnel): void {
    ensurePrivateDir(this.dir);
    writeFileAtomic(this.fileOf(entry.pid), `${JSON.stringify(entry)}\n`);
  }

  /** Forgets the record of `pid`. */
  remove(pid: number): void {
    rmSync(this.fileOf(pid), { force: true });
  }

  /** Live tunnels, oldest first; removes records of processes that are gone or files that are unreadable. */
  list(): ActiveTunnel[] {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return [];
    }
    const live: ActiveTunnel[] = [];
    for (const name of names) {
      if (!/^connect-\d+\.json$/.test(name)) continue;
      const file = join(this.dir, name);
      let entry: ActiveTunnel | null = null;
      try {
        const parsed = activeTunnelSchema.safeParse(JSON.parse(readFileSync(file, 'utf8')));
        entry = parsed.success ? parsed.data : null;
      } catch {
        entry = null;
      }
      if (entry && this.isAlive(entry.pid)) live.push(entry);
      else rmSync(file, { force: true });
    }
    return live.sort((a, b) => a.startedAt.localeCompare(b.startedAt));
  }
}
