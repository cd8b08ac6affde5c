// Instruction flag validation (bk:instructions/bflag.go): each instruction
// declares the flags it accepts; anything else is an error.

import { withSuggestion } from './gostr';

type FlagKind = 'bool' | 'string' | 'strings';

interface FlagDef {
  kind: FlagKind;
  value: string;
  values: string[];
  used: boolean;
}

export class FlagSet {
  private readonly defs = new Map<string, FlagDef>();

  constructor(private readonly args: readonly string[]) {}

  private add(name: string, kind: FlagKind, value: string): void {
    this.defs.set(name, { kind, value, values: [], used: false });
  }

  addBool(name: string, def = false): this {
    this.add(name, 'bool', def ? 'true' : 'false');
    return this;
  }

  addString(name: string, def = ''): this {
    this.add(name, 'string', def);
    return this;
  }

  addStrings(name: string): this {
    this.add(name, 'strings', '');
    return this;
  }

  /** Applies the raw flags. Throws with BuildKit's messages. */
  parse(): this {
    for (const arg of this.args) {
      if (arg === '--') return this;
      if (!arg.startsWith('--')) throw new Error(`arg should start with -- : ${arg}`);
      const eq = arg.indexOf('=');
      const flagName = eq < 0 ? arg : arg.slice(0, eq);
      const hasValue = eq >= 0;
      const value = hasValue ? arg.slice(eq + 1) : '';
      const name = flagName.slice(2);
      const def = this.defs.get(name);
      if (!def) throw new Error(withSuggestion(`unknown flag: ${flagName}`, name, [...this.defs.keys()], true));
      if (def.used && def.kind !== 'strings') throw new Error(`duplicate flag specified: ${flagName}`);
      def.used = true;
      switch (def.kind) {
        case 'bool': {
          if (hasValue && value === '') throw new Error(`missing a value on flag: ${flagName}`);
          const v = value.toLowerCase();
          if (v === 'true' || v === '') def.value = 'true';
          else if (v === 'false') def.value = 'false';
          else throw new Error(`expecting boolean value for flag ${flagName}, not: ${value}`);
          break;
        }
        case 'string':
          if (!hasValue) throw new Error(`missing a value on flag: ${flagName}`);
          def.value = value;
          break;
        case 'strings':
          if (!hasValue) throw new Error(`missing a value on flag: ${flagName}`);
          def.values.push(value);
          break;
      }
    }
    return this;
  }

  private get(name: string): FlagDef {
    const def = this.defs.get(name);
    if (!def) throw new Error(`flag ${name} was not declared`);
    return def;
  }

  string(name: string): string {
    return this.get(name).value;
  }

  bool(name: string): boolean {
    return this.get(name).value === 'true';
  }

  strings(name: string): string[] {
    return [...this.get(name).values];
  }

  isUsed(name: string): boolean {
    return this.get(name).used;
  }

  used(): string[] {
    return [...this.defs].filter(([, d]) => d.used).map(([n]) => n);
  }
}
