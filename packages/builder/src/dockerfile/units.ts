// Go value syntaxes BuildKit accepts in flags: time.ParseDuration (HEALTHCHECK)
// and docker/go-units RAMInBytes (tmpfs size=).

const NS_PER: Record<string, number> = {
  ns: 1,
  us: 1e3,
  'µs': 1e3, // U+00B5 micro sign
  'μs': 1e3, // U+03BC Greek mu
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

const MAX_INT64 = 9223372036854775807;

function quoteGo(s: string): string {
  return '"' + s.replace(/\\/g, '\\\\').replace(/"/g, '\\"') + '"';
}

/** Go's time.ParseDuration, in nanoseconds. Throws `time: invalid duration "x"` etc. */
export function parseGoDuration(input: string): number {
  const invalid = () => new Error(`time: invalid duration ${quoteGo(input)}`);
  let s = input;
  let neg = false;
  if (s !== '' && (s[0] === '-' || s[0] === '+')) {
    neg = s[0] === '-';
    s = s.slice(1);
  }
  if (s === '0') return 0;
  if (s === '') throw invalid();
  let total = 0;
  while (s !== '') {
    const m = /^([0-9]*)(?:\.([0-9]*))?/.exec(s)!;
    const whole = m[1]!;
    const frac = m[2] ?? '';
    if (whole === '' && frac === '') throw invalid();
    s = s.slice(m[0].length);
    let i = 0;
    while (i < s.length && s[i] !== '.' && !(s[i]! >= '0' && s[i]! <= '9')) i++;
    if (i === 0) throw new Error(`time: missing unit in duration ${quoteGo(input)}`);
    const unitName = s.slice(0, i);
    s = s.slice(i);
    const unit = NS_PER[unitName];
    if (unit === undefined) throw new Error(`time: unknown unit ${quoteGo(unitName)} in duration ${quoteGo(input)}`);
    const v = (whole === '' ? 0 : Number(whole)) * unit;
    const f = frac === '' ? 0 : Math.trunc(Number('0.' + frac) * unit);
    total += v + f;
    if (total > MAX_INT64) throw invalid();
  }
  return neg ? -total : total;
}

const goFloatRe = /^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$/;

/** docker/go-units RAMInBytes: `64m`, `1.5GiB`, `512` (binary multiples). */
export function ramInBytes(sizeStr: string): number {
  let sep = -1;
  for (let i = sizeStr.length - 1; i >= 0; i--) {
    if ('0123456789. '.includes(sizeStr[i]!)) {
      sep = i;
      break;
    }
  }
  if (sep === -1) throw new Error(`invalid size: '${sizeStr}'`);
  const num = sizeStr[sep] !== ' ' ? sizeStr.slice(0, sep + 1) : sizeStr.slice(0, sep);
  let sfx = sizeStr.slice(sep + 1);
  if (!goFloatRe.test(num)) throw new Error(`strconv.ParseFloat: parsing ${quoteGo(num)}: invalid syntax`);
  const size = Number(num);
  if (size < 0) throw new Error(`invalid size: '${sizeStr}'`);
  if (sfx.length === 0) return Math.trunc(size);
  const bad = () => new Error(`invalid suffix: '${sfx}'`);
  if (sfx.length > 3) throw bad();
  sfx = sfx.toLowerCase();
  if (sfx[0] === 'b') {
    if (sfx.length > 1) throw bad();
    return Math.trunc(size);
  }
  const mul = ({ k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 } as Record<string, number>)[sfx[0]!];
  if (mul === undefined) throw bad();
  if ((sfx.length === 2 && sfx[1] !== 'b') || (sfx.length === 3 && sfx.slice(1) !== 'ib')) throw bad();
  return Math.trunc(size * mul);
}
