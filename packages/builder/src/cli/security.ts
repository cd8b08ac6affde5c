// --security-opt, shared by run and build: Docker's `seccomp=unconfined|PROFILE.json` and
// `no-new-privileges[=true|false]` (the older `KEY:VALUE` spelling too). A profile file is read and
// checked here, so a bad one fails before anything starts.
import { seccompOptionFromFlag, type SeccompOption } from '@tsbuild/storage';
import { CommandError } from './errors';

export interface SecurityOptions {
  seccomp?: SeccompOption;
  noNewPrivileges?: boolean;
}

export function parseSecurityOpts(values: readonly string[] | undefined, allowed: readonly string[] = ['seccomp', 'no-new-privileges']): SecurityOptions {
  const out: SecurityOptions = {};
  for (const opt of values ?? []) {
    const m = /^([a-z-]+)(?:[=:](.*))?$/s.exec(opt);
    const key = m?.[1] ?? '';
    const value = m?.[2];
    if (!m || !allowed.includes(key)) {
      throw new CommandError(`invalid --security-opt: "${opt}" (supported: ${allowed.map((a) => (a === 'seccomp' ? 'seccomp=unconfined|PROFILE.json' : a)).join(', ')})`, 125);
    }
    if (key === 'no-new-privileges') {
      if (value !== undefined && value !== 'true' && value !== 'false') {
        throw new CommandError(`invalid --security-opt: "${opt}": no-new-privileges takes true or false`, 125);
      }
      out.noNewPrivileges = value !== 'false';
      continue;
    }
    if (!value) throw new CommandError(`invalid --security-opt: "${opt}": seccomp needs unconfined or a profile file`, 125);
    try {
      out.seccomp = seccompOptionFromFlag(value);
    } catch (err) {
      throw new CommandError((err as Error).message, 125);
    }
  }
  return out;
}
