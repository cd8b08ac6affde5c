// Argument parsing shared by the commands: node:util.parseArgs with usage errors that name the flag.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { IMAGE_SINKS, parsePlatform, type Platform } from '@tsbuild/storage';
import { UsageError } from './errors';

export type Options = NonNullable<ParseArgsConfig['options']>;

export interface ParsedArgs<O extends Options> {
  values: ReturnType<typeof parseArgs<{ options: O; allowPositionals: true; strict: true }>>['values'];
  positionals: string[];
}

/** `usage` may be a function: a usage text that lists the image sinks loads the transports to do so. */
/** A `--platform` value: `linux/arm64`, a one-line usage error otherwise. */
export function parsePlatformFlag(text: string): Platform {
  try {
    return parsePlatform(text);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

export function parseCommandArgs<O extends Options>(args: string[], options: O, usage: string | (() => string)): ParsedArgs<O> {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true }) as ParsedArgs<O>;
  } catch (err) {
    throw new UsageError(`${(err as Error).message.replace(/\. To specify a positional argument.*$/s, '')}\n${typeof usage === 'function' ? usage() : usage}`);
  }
}

/** `K=V` (split at the first '='); a bare `K` takes its value from the environment when `fromEnv`. */
export function parseKeyValues(values: string[] | undefined, what: string, fromEnv = false): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values ?? []) {
    const eq = v.indexOf('=');
    if (eq < 0) {
      if (fromEnv) {
        if (process.env[v] !== undefined) out[v] = process.env[v]!;
        continue;
      }
      throw new UsageError(`invalid ${what} "${v}": expected KEY=VALUE`);
    }
    if (eq === 0) throw new UsageError(`invalid ${what} "${v}": the key is empty`);
    out[v.slice(0, eq)] = v.slice(eq + 1);
  }
  return out;
}

/** Parses a CSV option value (`type=oci,dest=out.tar`) into a map. */
export function parseCsv(value: string, what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const field of value.split(',')) {
    if (field === '') continue;
    const eq = field.indexOf('=');
    if (eq <= 0) throw new UsageError(`invalid ${what} "${value}": expected key=value pairs separated by commas`);
    out[field.slice(0, eq).trim()] = field.slice(eq + 1);
  }
  return out;
}

/** Human sizes as docker prints them: 1.23MB. */
export function humanSize(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = bytes;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  // docker's units.HumanSize: three significant digits (%.3g), so 10010 bytes is 10kB.
  return i === 0 ? `${v}${units[i]}` : `${Number(v.toPrecision(3))}${units[i]}`;
}

/** "3 minutes ago" style, as docker images prints CREATED. */
export function timeAgo(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return 'N/A';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return 'N/A';
  const s = Math.max(0, Math.round((now - t) / 1000));
  const steps: [number, string][] = [[60, 'second'], [60, 'minute'], [24, 'hour'], [7, 'day'], [4.35, 'week'], [12, 'month'], [Infinity, 'year']];
  let value = s;
  for (const [size, unit] of steps) {
    if (value < size) {
      const n = Math.floor(value);
      if (unit === 'second' && n < 1) return 'Less than a second ago';
      return `${n} ${unit}${n === 1 ? '' : 's'} ago`;
    }
    value /= size;
  }
  return 'a long time ago';
}

/** Left-aligned columns separated by 3 spaces, as docker's tables. */
export function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]! + 3))).join('').trimEnd()).join('\n') + '\n';
}

/** docker's --add-host HOST:IP. */
export function parseAddHost(spec: string): { host: string; ip: string } {
  const i = spec.indexOf(':');
  const host = spec.slice(0, i);
  const ip = spec.slice(i + 1);
  if (i <= 0 || ip === '' || !/^[A-Za-z0-9.-]+$/.test(host) || !/^[0-9A-Fa-f:.]+$/.test(ip.replace(/^\[|\]$/g, ''))) {
    throw new UsageError(`invalid --add-host "${spec}": use HOST:IP`);
  }
  return { host, ip: ip.replace(/^\[|\]$/g, '') };
}

/** docker's --ulimit TYPE=SOFT[:HARD] (-1 or unlimited: no limit). */
export function parseUlimit(spec: string): { type: string; soft: number; hard: number } {
  const m = /^([a-z]+)=(-?\d+|unlimited)(?::(-?\d+|unlimited))?$/.exec(spec);
  if (!m) throw new UsageError(`invalid --ulimit "${spec}": use TYPE=SOFT[:HARD], e.g. nofile=1024:2048`);
  const value = (v: string) => (v === 'unlimited' || v === '-1' ? Infinity : Number(v));
  const soft = value(m[2]!);
  const hard = m[3] === undefined ? soft : value(m[3]);
  if (soft > hard) throw new UsageError(`invalid --ulimit "${spec}": the soft limit is above the hard limit`);
  return { type: m[1]!, soft, hard };
}

/** docker's sizes: 64m, 1g, 512k, 1024 (bytes); binary units. */
export function parseSize(v: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)([bkmg]?)b?$/i.exec(v.trim());
  if (!m) throw new UsageError(`invalid ${flag} size "${v}": use e.g. 64m or 1g`);
  const mult = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2]!.toLowerCase() as '' | 'b' | 'k' | 'm' | 'g'];
  return Math.floor(Number(m[1]) * mult);
}

/**
 * Runs `fn` for each name, as docker does for several containers or images: a failure is reported in
 * one line and the others still run. Exit 1 when any failed.
 */
export async function forEachRef(refs: string[], fn: (ref: string) => Promise<void> | void, parallel = false): Promise<number> {
  let failed = 0;
  const one = async (ref: string) => {
    try {
      await fn(ref);
    } catch (err) {
      process.stderr.write(`tsbuild: ${(err as Error).message}\n`);
      failed++;
    }
  };
  if (parallel) await Promise.all(refs.map(one));
  else for (const ref of refs) await one(ref);
  return failed > 0 ? 1 : 0;
}

/**
 * Splits `run IMAGE CMD…` / `exec CONTAINER CMD…`: options stop at the first positional (skipping the
 * values of `options`' string flags); what follows it belongs to the container.
 */
export function splitAtFirstPositional(args: string[], options: Options): { options: string[]; first?: string; rest: string[] } {
  const valued = new Set(
    Object.entries(options)
      .filter(([, v]) => v.type === 'string')
      .flatMap(([k, v]) => [`--${k}`, ...(v.short ? [`-${v.short}`] : [])]),
  );
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') return { options: args.slice(0, i), ...(args[i + 1] !== undefined ? { first: args[i + 1] } : {}), rest: args.slice(i + 2) };
    if (a.startsWith('-')) {
      if (valued.has(a)) i++;
      continue;
    }
    return { options: args.slice(0, i), first: a, rest: args.slice(i + 1) };
  }
  return { options: args, rest: [] };
}

/**
 * Usage lines for the registered image sinks (`save --format`, `build -o type=`), one per sink. Call
 * it when the text is shown: the sinks' list loads the transports, which a build or `images` never runs.
 */
export function sinkUsage(indent: string): string {
  return IMAGE_SINKS.map((s) => `${indent}${[s.name, ...s.aliases].join(', ')}: ${s.summary}`).join('\n');
}
