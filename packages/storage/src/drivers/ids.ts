// Identifiers of driver layers: random 64-hex ids (like Docker's cache ids) and overlay2's 26-char
// base32 short ids, which keep each lower path short.
import { randomBytes } from '@tsbuild/native';

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** 26 characters of RFC 4648 base32 from 128 random bits (Docker's overlay2 `l/` names). */
export function shortId(): string {
  const bytes = randomBytes(17);
  let bits = 0;
  let value = 0;
  let out = '';
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5 && out.length < 26) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    value &= (1 << bits) - 1;
  }
  return out;
}

export const SHORT_ID_RE = /^[A-Z2-7]{26}$/;

/** A random 64-hex layer id. */
export function randomLayerId(): string {
  return randomBytes(32).toString('hex');
}

/** Suffix of a directory whose removal is under way; start-up repair finishes the job. */
export const REMOVING_SUFFIX = '-removing';

/**
 * Checks a layer id given to a driver: one path component, no reserved names, so it can never address
 * anything outside the driver's directory.
 */
export function checkLayerId(id: string): string {
  if (typeof id !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(id) || id.endsWith(REMOVING_SUFFIX)) {
    throw new Error(`invalid layer id ${JSON.stringify(id)}: expected 1-128 characters of [A-Za-z0-9_.-], not ending in ${REMOVING_SUFFIX}`);
  }
  return id;
}
