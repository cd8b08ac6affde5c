// The library in one file: import a base image, build a Dockerfile, run the image, and cancel a
// second build in the middle of its RUN step. Run as root:
//
//   node build-and-run.js STORAGE_ROOT BASE_ROOTFS.tar
//
// It prints one JSON line: the image, what the container printed and how the canceled build ended.
// test/packaging.test.ts compiles it against the packed packages and runs it.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { build, type BuildEvent } from '@tsbuild/builder';
import { Containers, Store } from '@tsbuild/storage';

/** Runs an image's default command and returns what it printed on stdout. */
async function runImage(store: Store, image: string): Promise<{ exitCode: number; stdout: string }> {
  const containers = new Containers(store);
  const { record, process } = await containers.create({ image });
  try {
    const { container, finished } = await containers.start(record, process, { stdio: 'pipe' });
    const chunks: Buffer[] = [];
    container.stdout?.on('data', (chunk: Buffer) => chunks.push(chunk));
    const exit = await finished;
    return { exitCode: exit.exitCode, stdout: Buffer.concat(chunks).toString() };
  } finally {
    await containers.remove(record.id, { force: true });
  }
}

/** Starts a build whose RUN never ends on its own, and aborts it once the RUN has printed. */
async function buildAndCancel(store: Store, context: string): Promise<string> {
  const dockerfile = path.join(context, 'Dockerfile.slow');
  fs.writeFileSync(dockerfile, 'FROM base:latest\nRUN echo started && sleep 600\n');
  const controller = new AbortController();
  const onEvent = (event: BuildEvent) => {
    if (event.type === 'step-log' && event.data.toString().includes('started')) controller.abort();
  };
  try {
    await build({ context, dockerfile, tags: ['slow:latest'] }, { store, signal: controller.signal, onEvent });
    return 'not canceled';
  } catch (err) {
    return (err as Error).message;
  }
}

async function main(root: string, baseTarball: string): Promise<void> {
  const store = await Store.open(root);
  const context = fs.mkdtempSync(path.join(os.tmpdir(), 'tsbuild-example-'));
  try {
    await store.importTarball(baseTarball, 'base:latest');
    fs.writeFileSync(path.join(context, 'Dockerfile'), 'FROM base:latest\nRUN echo built by tsbuild > /greeting\nCMD ["cat", "/greeting"]\n');
    const steps: string[] = [];
    const result = await build(
      { context, tags: ['example:latest'] },
      { store, onEvent: (event) => event.type === 'step-start' && steps.push(event.name) },
    );
    const run = await runImage(store, 'example:latest');
    const canceled = await buildAndCancel(store, context);
    process.stdout.write(`${JSON.stringify({ imageId: result.imageId, tags: result.tags, steps, run, canceled })}\n`);
  } finally {
    fs.rmSync(context, { recursive: true, force: true });
    await store.close();
  }
}

const [root, baseTarball] = process.argv.slice(2);
if (!root || !baseTarball) {
  process.stderr.write('usage: node build-and-run.js STORAGE_ROOT BASE_ROOTFS.tar\n');
  process.exitCode = 2;
} else {
  main(root, baseTarball).catch((err: Error) => {
    process.stderr.write(`build-and-run: ${err.message}\n`);
    process.exitCode = 1;
  });
}
