#!/usr/bin/env bash
# Sets up a fresh Debian machine for tsbuild: the Debian packages a build needs (and, with --test, every package the
# test suite uses), npm dependencies, the CLI on PATH (`npm link`), then the example built end to end.
# .ci/run calls this same script, so what the README promises and what CI checks cannot drift apart.
# Usage: scripts/setup.sh [--test] [--no-link] [--no-example]
set -euo pipefail
cd "$(dirname "$0")/.."

with_test=0 link=1 example=1
for a in "$@"; do
  case "$a" in
    --test) with_test=1 ;;
    --no-link) link=0 ;;
    --no-example) example=0 ;;
    *) echo "setup.sh: unknown option $a (known: --test --no-link --no-example)" >&2; exit 2 ;;
  esac
done

# What a build needs: a RUN sandbox (crun; runc and bubblewrap are the alternatives), RUN's default network
# (slirp4netns, iproute2), the local busybox base recipe (busybox-static, umoci, skopeo), archive formats for ADD (zstd
# also compresses compression=zstd exports), git for git contexts, and pigz: optional, gzip of exported and pushed
# layers on every core (without it tsbuild uses node's zlib). Rootless builds: uidmap (newuidmap/newgidmap map the
# user's subordinate ids) and fuse-overlayfs (RUN snapshots where the kernel refuses overlayfs in a user namespace).
PKGS=(crun slirp4netns iproute2 busybox-static umoci skopeo bzip2 xz-utils zstd pigz tar git uidmap fuse-overlayfs)
# What the tests use besides: the other runtimes, a registry with htpasswd auth, TLS certificates, util-linux's
# script and prlimit, QEMU user emulation for the multi-platform tests (arm64 RUN steps through binfmt_misc), and a
# private Docker engine for --load (docker.io).
TEST_PKGS=(runc bubblewrap docker-registry apache2-utils openssl util-linux qemu-user-static docker.io openssh-client)
[ "$with_test" = 1 ] && PKGS+=("${TEST_PKGS[@]}")

export DEBIAN_FRONTEND=noninteractive
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
if [ "$with_test" = 1 ] && ! dpkg --print-foreign-architectures | grep -qx arm64; then
  # The multi-platform tests build an arm64 base image from Debian's busybox-static:arm64 (apt-get download).
  $sudo dpkg --add-architecture arm64
  $sudo apt-get update -qq
fi
missing=()
for p in "${PKGS[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq "${missing[@]}"
fi

npm ci --no-audit --no-fund
npm run build
if [ "$link" = 1 ]; then
  # `tsbuild` on PATH, pointing at this checkout (a symlink: a later `npm run build` updates it).
  npm link --no-audit --no-fund >/dev/null 2>&1 || echo "setup.sh: could not put tsbuild on PATH with \`npm link\` (needs write access to $(npm prefix -g)); use node dist/bundle/bin.js" >&2
fi
[ "$example" = 1 ] && scripts/example.sh
exit 0
