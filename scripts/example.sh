#!/usr/bin/env bash
# Builds the example multi-stage project end to end on a busybox base made locally from Debian's busybox-static:
# make the base image, load it into the default store (so `FROM busybox:local` works in the next command a user types),
# build fixtures/example, export it, and check the result with skopeo.
set -euo pipefail
cd "$(dirname "$0")/.."
out="$PWD/.tsbuild-example-out"
mkdir -p "$out"
tsbuild() { node dist/bundle/bin.js "$@"; }

scripts/make-busybox-base.sh "$out/busybox.tar" busybox:local
tsbuild load -i "$out/busybox.tar"
tsbuild build -t example:latest --build-arg VERSION=1.2.3 fixtures/example
tsbuild images
tsbuild history example:latest
tsbuild save -o "$out/example.tar" example:latest
skopeo inspect "docker-archive:$out/example.tar" | head -20
echo "example built: image example:latest in the store ${TSBUILD_ROOT:-(default: ~/.local/share/tsbuild)}, archive $out/example.tar"
