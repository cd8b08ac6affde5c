// A container's environment: the image's Env with docker run's / exec's -e entries replacing
// same-named ones (a bare NAME replaces NAME too).
export function mergeEnv(base: string[], overrides: string[]): string[] {
  const out = [...base];
  for (const kv of overrides) {
    const key = kv.includes('=') ? kv.slice(0, kv.indexOf('=')) : kv;
    const i = out.findIndex((e) => e === key || e.startsWith(`${key}=`));
    if (i >= 0) out[i] = kv;
    else out.push(kv);
  }
  return out;
}
