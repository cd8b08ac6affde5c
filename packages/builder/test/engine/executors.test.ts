// The executor registry: one executor per step kind, and what the config-only executors do at
// planning and write into the history (no root, no store: planning a config step touches nothing).
import { describe, expect, it } from 'vitest';
import { EXPANDED_INSTRUCTIONS, ShellLexer, expandInstruction, parse, parseInstructions, type Instruction } from '../../src/dockerfile';
import { hostPlatform } from '@tsbuild/storage';
import { ArgScope } from '../../src/engine/args';
import { ConfigState, scratchConfig } from '../../src/engine/image-config';
import { executorFor, type PlanContext, type Step, type StepKind } from '../../src/engine/executors';

const STEP_KINDS: StepKind[] = [
  'run', 'cmd', 'entrypoint', 'copy', 'add', 'env', 'arg', 'label', 'workdir', 'user', 'expose', 'volume', 'shell', 'stopsignal', 'healthcheck', 'onbuild', 'maintainer',
];

/** Plans a one-stage Dockerfile's steps with the config executors; returns each step's history line. */
async function planConfigSteps(dockerfile: string, buildArgs: Record<string, string> = {}): Promise<{ state: ConfigState; history: string[] }> {
  const stage = parseInstructions(parse(dockerfile)).stages[0]!;
  const lexer = new ShellLexer();
  const state = new ConfigState(scratchConfig());
  const scope = new ArgScope(new Map(Object.entries(buildArgs)), new Map(), new Set());
  const visible = (name: string) => state.getEnv(name) ?? scope.values.get(name);
  const ctx: PlanContext = {
    state,
    scope,
    lexer,
    visible,
    secrets: {},
    allow: [],
    platform: hostPlatform(),
    dependOn: () => Promise.reject(new Error('config steps read no stage')),
    contextSources: () => Promise.reject(new Error('config steps read no context')),
  };
  const history: string[] = [];
  for (const raw of stage.instructions) {
    const instr = (EXPANDED_INSTRUCTIONS.has(raw.kind) ? expandInstruction(raw, visible, lexer) : raw) as Instruction & { kind: StepKind };
    const executor = executorFor(instr.kind);
    expect(executor.layer, instr.kind).toBe(false);
    const configBefore = structuredClone(state.image);
    const planned = await executor.plan(instr, ctx);
    const step: Step = { instr, planned, runEnv: [], keyEnv: [], args: [], configBefore, configAfter: structuredClone(state.image), original: raw.original };
    history.push(executor.history(step));
  }
  return { state, history };
}

describe('instruction executors', () => {
  it('every step kind has one; RUN, COPY, ADD and WORKDIR make layers, the rest change the config', () => {
    expect(STEP_KINDS.filter((k) => executorFor(k).layer).sort()).toEqual(['add', 'copy', 'run', 'workdir']);
    expect(executorFor('copy')).toBe(executorFor('add')); // one executor: ADD is COPY with URLs and archives
    expect(() => executorFor('from')).toThrow('FROM is planned with its stage');
  });

  it('config executors apply to the config and record BuildKit-style history lines', async () => {
    // Each instruction and its history line: variables expanded where BuildKit expands them.
    const lines: [string, string][] = [
      ['ARG V=1', 'ARG V=1'],
      ['ENV A=$V B="two words"', 'ENV A=3 B=two words'],
      ['LABEL l=$A', 'LABEL l=3'],
      ['USER app:$V', 'USER app:3'],
      ['EXPOSE 80/tcp 53/udp', 'EXPOSE 53/udp 80/tcp'],
      ['VOLUME /data', 'VOLUME ["/data"]'],
      ['STOPSIGNAL SIGTERM', 'STOPSIGNAL SIGTERM'],
      ['SHELL ["/bin/bash", "-c"]', 'SHELL ["/bin/bash", "-c"]'],
      ['CMD echo $A', 'CMD echo $A'],
      ['ENTRYPOINT ["/init"]', 'ENTRYPOINT ["/init"]'],
      ['HEALTHCHECK --interval=5s CMD true', 'HEALTHCHECK --interval=5s CMD true'],
      ['ONBUILD RUN make', 'ONBUILD RUN make'],
      ['MAINTAINER someone', 'MAINTAINER someone'],
    ];
    const { state, history } = await planConfigSteps(['FROM scratch', ...lines.map(([line]) => line), ''].join('\n'), { V: '3' });
    expect(history).toEqual(lines.map(([, text]) => text));
    const c = state.config;
    expect(c.Env).toEqual([scratchConfig().config.Env![0], 'A=3', 'B=two words']);
    expect(c.Labels).toEqual({ l: '3' });
    expect(c.User).toBe('app:3');
    expect(Object.keys(c.ExposedPorts ?? {})).toEqual(['53/udp', '80/tcp']);
    expect(c.Shell).toEqual(['/bin/bash', '-c']);
    expect(c.Cmd).toEqual(['/bin/bash', '-c', 'echo $A']);
    expect(c.Entrypoint).toEqual(['/init']);
    expect(c.Healthcheck).toEqual({ Test: ['CMD-SHELL', 'true'], Interval: 5e9 });
    expect(c.OnBuild).toEqual(['RUN make']);
    expect(state.image.author).toBe('someone');
  });

  it('a bad config instruction fails at planning, naming its line', async () => {
    await expect(planConfigSteps('FROM scratch\nENV A=1\nEXPOSE abc\n')).rejects.toThrow('Dockerfile:3: invalid containerPort: abc');
  });
});
