// Mount reference counts shared by every process using the store (containers/storage keeps them in
// mountpoints.json, outside the layer metadata). Per driver id, per holder process:
//   <root>/layers/mounts.json = { "<driver id>": { "<pid>.<starttime>": count } }
// Only touched under the store's exclusive lock. Holders that died are dropped at open.
// A crash while a mount is held, or between a mount's count and the mount, leaves a count of a dead
// process (the next open repairs in full). An unmount drops its count first: from then until the
// driver has unmounted (settled) a marker dir of this process is in the store's tmp/
// (`<token>-unmount-…`), so a crash in between shows as well.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomicVolatileSync } from '../atomic';
import type { MountCounter } from '../drivers/types';
import { isAlive, ownedName, processToken } from '../drivers/proc';
import { randomBytes } from '@tsbuild/native';

export type MountTable = Record<string, Record<string, number>>;

export class MountState implements MountCounter {
  /** This instance's marker in `markerDir` while unmounts are pending. */
  private marker: string | undefined;
  /** Unmounts counted down and not settled yet. */
  private pending = 0;

  constructor(
    readonly file: string,
    /** Where the marker goes (the layer store's tmp/). */
    private readonly markerDir: string,
  ) {}

  load(): MountTable {
    return MountState.parse(this.read());
  }

  /** The file's text, or null when there is none. */
  private read(): string | null {
    try {
      return fs.readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  private static parse(text: string | null): MountTable {
    if (text === null) return {};
    try {
      const parsed = JSON.parse(text) as unknown;
      return parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as MountTable) : {};
    } catch {
      return {}; // unreadable counts are worth less than a working store: start over (repair checks mounts)
    }
  }

  /**
   * Atomic, not fsynced: counts of mounts mean nothing after a reboot (the mounts and their holders are
   * gone, and open prunes dead holders; a table a power loss tore parses as empty), and a killed
   * process leaves its write in the page cache. Two fsyncs less per mount and per unmount.
   */
  async save(table: MountTable): Promise<void> {
    writeFileAtomicVolatileSync(this.file, MountState.format(table), 0o600);
  }

  private static format(table: MountTable): string {
    return JSON.stringify(table, null, 1) + '\n';
  }

  static total(holders: Record<string, number> | undefined): number {
    return holders ? Object.values(holders).reduce((a, b) => a + b, 0) : 0;
  }

  count(id: string): number {
    return MountState.total(this.load()[id]);
  }

  async increment(id: string): Promise<number> {
    const table = this.load();
    const holders = (table[id] ??= {});
    const me = processToken();
    holders[me] = (holders[me] ?? 0) + 1;
    await this.save(table);
    return MountState.total(holders);
  }

  /** Drops one of this process's references, else one of any holder's (an explicit unmount). */
  async decrement(id: string): Promise<number> {
    if (this.marker === undefined) {
      const marker = path.join(this.markerDir, ownedName(`unmount-${randomBytes(8).toString('hex')}`));
      fs.mkdirSync(marker, { mode: 0o700 });
      this.marker = marker;
    }
    this.pending++;
    const table = this.load();
    const holders = table[id];
    if (!holders) return 0;
    const me = processToken();
    const who = holders[me] ? me : Object.keys(holders).find((k) => (holders[k] ?? 0) > 0);
    if (who !== undefined) {
      holders[who]!--; // who is a key of holders
      if (holders[who]! <= 0) delete holders[who];
    }
    if (Object.keys(holders).length === 0) delete table[id];
    await this.save(table);
    return MountState.total(table[id]);
  }

  settled(_id: string): void {
    if (--this.pending > 0 || this.marker === undefined) return;
    fs.rmSync(this.marker, { recursive: true, force: true });
    this.marker = undefined;
    this.pending = 0;
  }

  /** Whether the table holds a count of a dead process, or cannot be read: then repair must run. */
  needsRepair(): boolean {
    const text = this.read();
    if (text === null) return false;
    const table = MountState.parse(text);
    if (Object.keys(table).length === 0) return text !== MountState.format({});
    return Object.values(table).some((holders) => Object.entries(holders ?? {}).some(([token, n]) => !(n > 0) || !isAlive(token)));
  }

  /**
   * Drops holders that no longer run and ids that `keep` rejects; returns the cleaned table (saved).
   */
  async prune(keep: (id: string, count: number) => boolean): Promise<MountTable> {
    const text = this.read();
    const table = MountState.parse(text);
    for (const id of Object.keys(table)) {
      const holders = table[id] ?? {};
      for (const token of Object.keys(holders)) {
        if (!isAlive(token) || !((holders[token] ?? 0) > 0)) delete holders[token];
      }
      const n = MountState.total(holders);
      if (n === 0 || !keep(id, n)) delete table[id];
    }
    // Every open prunes: rewriting (and fsyncing) an unchanged table would make a read-only command write.
    const pruned = MountState.format(table);
    if (pruned !== (text ?? MountState.format({}))) await this.save(table);
    return table;
  }
}
