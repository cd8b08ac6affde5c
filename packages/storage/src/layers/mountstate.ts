// Mount reference counts shared by every process using the store (containers/storage keeps them in
// mountpoints.json, outside the layer metadata). Per driver id, per holder process:
//   <root>/layers/mounts.json = { "<driver id>": { "<pid>.<starttime>": count } }
// Only touched under the store's exclusive lock. Holders that died are dropped at open.
import * as fs from 'node:fs';
import { writeFileAtomic } from '../atomic';
import type { MountCounter } from '../drivers/types';
import { isAlive, processToken } from '../drivers/proc';

export type MountTable = Record<string, Record<string, number>>;

export class MountState implements MountCounter {
  constructor(readonly file: string) {}

  load(): MountTable {
    let text: string;
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
      throw err;
    }
    try {
      const parsed = JSON.parse(text) as unknown;
      return parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as MountTable) : {};
    } catch {
      return {}; // unreadable counts are worth less than a working store: start over (repair checks mounts)
    }
  }

  async save(table: MountTable): Promise<void> {
    await writeFileAtomic(this.file, JSON.stringify(table, null, 1) + '\n', 0o600);
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

  /**
   * Drops holders that no longer run and ids that `keep` rejects; returns the cleaned table (saved).
   */
  async prune(keep: (id: string, count: number) => boolean): Promise<MountTable> {
    const table = this.load();
    for (const id of Object.keys(table)) {
      const holders = table[id] ?? {};
      for (const token of Object.keys(holders)) {
        if (!isAlive(token) || !((holders[token] ?? 0) > 0)) delete holders[token];
      }
      const n = MountState.total(holders);
      if (n === 0 || !keep(id, n)) delete table[id];
    }
    await this.save(table);
    return table;
  }
}
