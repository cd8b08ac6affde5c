// The `app` workload of ../shared/bench/mkworkloads.sh (11 instructions, 3 RUN), written the same way:
// 200 small sources, a config file and the Dockerfile, `FROM bench-base`.
import * as fs from 'node:fs';
import * as path from 'node:path';

export const APP_DOCKERFILE = [
  'FROM bench-base',
  'RUN mkdir -p /app && echo built > /app/stamp',
  'WORKDIR /app',
  'COPY src/ /app/src/',
  'ENV MODE=prod',
  'RUN for i in $(seq 1 200); do echo line$i >> /app/log; done',
  'RUN rm /app/src/m1.js && ls /app/src | wc -l > /app/count',
  'COPY config.json /app/',
  'LABEL org.example.bench=app',
  'EXPOSE 8080',
  'USER 1000',
  'CMD ["/bin/sh","-c","cat /app/stamp"]',
  '',
].join('\n');

/** Writes the app workload into `dir` (created) and returns it. */
export function writeAppWorkload(dir: string): string {
  fs.mkdirSync(path.join(dir, 'src'), { recursive: true });
  for (let i = 1; i <= 200; i++) fs.writeFileSync(path.join(dir, 'src', `m${i}.js`), `export const v${i} = ${i};\n`);
  fs.writeFileSync(path.join(dir, 'config.json'), '{"name":"bench","port":8080}\n');
  fs.writeFileSync(path.join(dir, 'Dockerfile'), APP_DOCKERFILE);
  return dir;
}
