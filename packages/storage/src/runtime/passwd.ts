// /etc/passwd and /etc/group parsed by us (never NSS inside an untrusted rootfs), with the user-spec
// semantics of moby/sys/user GetExecUser that docker and runc use for USER: 'name', 'uid', 'name:group',
// 'uid:gid'; supplementary groups come from /etc/group membership when the group is not explicit.

export interface PasswdEntry {
  name: string;
  password: string;
  uid: number;
  gid: number;
  gecos: string;
  home: string;
  shell: string;
}

export interface GroupEntry {
  name: string;
  password: string;
  gid: number;
  members: string[];
}

export interface ExecUser {
  uid: number;
  gid: number;
  /** Supplementary groups (from /etc/group membership, only when the spec names no group). */
  additionalGids: number[];
  home: string;
}

const MAX_ID = 2 ** 31 - 1;

/** Go's strconv.Atoi: an optional sign and decimal digits, else null. */
export function parseDecimal(s: string): number | null {
  if (!/^[+-]?\d+$/.test(s)) return null;
  const n = Number(s);
  return Number.isSafeInteger(n) ? n : null;
}

/** A numeric passwd/group field; malformed ones read as 0, as moby/sys/user does. */
function field(s: string | undefined): number {
  return parseDecimal(s ?? '') ?? 0;
}

function lines(text: string | undefined): string[] {
  if (text === undefined) return [];
  return text.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
}

/** Parses /etc/passwd text (blank and '#' lines skipped; missing fields are empty or 0). */
export function parsePasswd(text: string | undefined): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const raw of lines(text)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const p = line.split(':');
    out.push({ name: p[0] ?? '', password: p[1] ?? '', uid: field(p[2]), gid: field(p[3]), gecos: p[4] ?? '', home: p[5] ?? '', shell: p[6] ?? '' });
  }
  return out;
}

/** Parses /etc/group text. */
export function parseGroup(text: string | undefined): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const line of lines(text)) {
    if (line === '' || line.startsWith('#')) continue;
    const p = line.split(':');
    const list = p[3] ?? '';
    out.push({ name: p[0] ?? '', password: p[1] ?? '', gid: field(p[2]), members: list === '' ? [] : list.split(',') });
  }
  return out;
}

function checkRange(id: number): number {
  if (id < 0 || id > MAX_ID) throw new Error(`uids and gids must be in range 0-${MAX_ID}`);
  return id;
}

/**
 * Resolves a USER spec against the image's passwd and group text (undefined when the file is absent).
 * An empty spec is root. A numeric uid or gid without an entry is accepted as is; an unknown name is
 * an error: `unable to find user X: no matching entries in passwd file`.
 */
export function lookupUser(passwdText: string | undefined, groupText: string | undefined, spec: string): ExecUser {
  const user: ExecUser = { uid: 0, gid: 0, additionalGids: [], home: '/' };
  const colon = spec.indexOf(':');
  const userArg = colon < 0 ? spec : spec.slice(0, colon);
  // Like moby/sys/user's parseLine, a third field is ignored.
  const groupArg = colon < 0 ? '' : spec.slice(colon + 1).split(':')[0]!;
  const uidArg = parseDecimal(userArg);
  const gidArg = parseDecimal(groupArg);

  const users = parsePasswd(passwdText).filter((u) => {
    if (userArg === '') return u.uid === user.uid;
    if (uidArg !== null) return u.uid === uidArg;
    return u.name === userArg;
  });
  let matchedName = '';
  const found = users[0];
  if (found) {
    matchedName = found.name;
    user.uid = found.uid;
    user.gid = found.gid;
    user.home = found.home;
  } else if (userArg !== '') {
    if (uidArg === null) throw new Error(`unable to find user ${userArg}: no matching entries in passwd file`);
    user.uid = checkRange(uidArg);
  }

  if (groupArg !== '' || matchedName !== '') {
    const groups = parseGroup(groupText).filter((g) => {
      if (groupArg === '') return g.members.includes(matchedName);
      if (gidArg !== null) return g.gid === gidArg;
      return g.name === groupArg;
    });
    if (groupArg !== '') {
      if (groups[0]) {
        user.gid = groups[0].gid;
      } else {
        if (gidArg === null) throw new Error(`unable to find group ${groupArg}: no matching entries in group file`);
        user.gid = checkRange(gidArg);
      }
    } else {
      user.additionalGids = groups.map((g) => g.gid);
    }
  }
  return user;
}
