// Instructions that only change the image config (and ARG, which changes the build's variables):
// no layer, no cache key. Each applies itself to the config state at planning; its history line is
// the instruction with its variables expanded, as BuildKit records it, or the text as written.
import type { HealthcheckInstruction } from '../../dockerfile';
import { atLine } from '../errors';
import type { ConfigState, HealthConfig } from '../image-config';
import type { ConfigExecutor, InstructionOf, StepKind } from './executor';

/** An executor for an instruction that sets part of the config. */
function configExecutor<K extends StepKind>(
  apply: (state: ConfigState, instr: InstructionOf<K>) => void,
  text?: (instr: InstructionOf<K>) => string,
): ConfigExecutor<K, void> {
  return {
    layer: false,
    plan(instr, ctx) {
      atLine(instr.startLine, () => apply(ctx.state, instr));
    },
    history: ({ instr, original }) => (text ? text(instr) : original),
  };
}

const pairs = (list: { key: string; value: string }[]) => list.map((p) => `${p.key}=${p.value}`).join(' ');

export const configExecutors = {
  env: configExecutor<'env'>(
    (state, i) => state.setEnv(i.pairs.map((p) => [p.key, p.value])),
    (i) => `ENV ${pairs(i.pairs)}`,
  ),
  label: configExecutor<'label'>(
    (state, i) => state.setLabels(i.labels.map((p) => [p.key, p.value])),
    (i) => `LABEL ${pairs(i.labels)}`,
  ),
  maintainer: configExecutor<'maintainer'>((state, i) => state.setAuthor(i.maintainer)),
  cmd: configExecutor<'cmd'>((state, i) => state.setCmd(i.cmdLine, i.prependShell)),
  entrypoint: configExecutor<'entrypoint'>((state, i) => state.setEntrypoint(i.cmdLine, i.prependShell)),
  user: configExecutor<'user'>(
    (state, i) => state.setUser(i.user),
    (i) => `USER ${i.user}`,
  ),
  expose: configExecutor<'expose'>(
    (state, i) => state.addExposedPorts(i.ports),
    (i) => `EXPOSE ${i.ports.join(' ')}`,
  ),
  volume: configExecutor<'volume'>(
    (state, i) => state.addVolumes(i.volumes),
    (i) => `VOLUME [${i.volumes.map((v) => JSON.stringify(v)).join(', ')}]`,
  ),
  shell: configExecutor<'shell'>((state, i) => state.setShell(i.shell)),
  stopsignal: configExecutor<'stopsignal'>(
    (state, i) => state.setStopSignal(i.signal),
    (i) => `STOPSIGNAL ${i.signal}`,
  ),
  onbuild: configExecutor<'onbuild'>((state, i) => state.addOnBuild(i.expression)),
  healthcheck: configExecutor<'healthcheck'>((state, i) => state.setHealthcheck(healthConfig(i.health))),
};

/** ARG: declares build variables in the stage's scope; the config is untouched. */
export const argExecutor: ConfigExecutor<'arg', void> = {
  layer: false,
  plan(instr, ctx) {
    ctx.scope.declare(instr, ctx.lexer, (name) => ctx.visible(name));
  },
  history: ({ instr }) => `ARG ${instr.args.map((a) => (a.value === undefined ? a.key : `${a.key}=${a.value}`)).join(' ')}`,
};

/** Docker's Healthcheck: `NONE` alone, otherwise the test plus only the fields that were set. */
function healthConfig(h: HealthcheckInstruction['health']): HealthConfig {
  if (h.test.length === 1 && h.test[0] === 'NONE') return { Test: ['NONE'] };
  const health: HealthConfig = { Test: h.test };
  if (h.interval) health.Interval = h.interval;
  if (h.timeout) health.Timeout = h.timeout;
  if (h.startPeriod) health.StartPeriod = h.startPeriod;
  if (h.startInterval) health.StartInterval = h.startInterval;
  if (h.retries) health.Retries = h.retries;
  return health;
}
