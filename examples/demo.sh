#!/usr/bin/env bash
# The main job: import a busybox base image, build examples/hello with tsbuild, run it.
# Uses TSBUILD_ROOT if set, otherwise /var/lib/tsbuild.
set -euo pipefail
cd "$(dirname "$0")/.."
tsbuild=(packages/builder/bin/tsbuild.js)  # run as a program, as npx and the npm bin link run it
base=$(mktemp --suffix=.tar)
trap 'rm -f "$base"' EXIT
node fixtures/dist/busybox.js "$base" >/dev/null
"${tsbuild[@]}" import "$base" busybox:latest
"${tsbuild[@]}" build -t hello examples/hello
"${tsbuild[@]}" run --rm hello
