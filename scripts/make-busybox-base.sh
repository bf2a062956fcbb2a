#!/bin/sh
# Build a minimal busybox base image as a docker-archive tar with real tools only (umoci + skopeo), independent of
# tsbuild's own code, so tests and benchmarks have a trusted base image.
# Usage: scripts/make-busybox-base.sh OUT.tar [TAG]    (TAG default busybox:local; needs root for file ownership)
# Environment: BUSYBOX=path of a static busybox (default /bin/busybox; another architecture's works too, e.g. arm64's
# from `apt-get download busybox-static:arm64`), ARCH=the image's architecture (default the host's, dpkg spelling
# mapped to Go's: amd64, arm64, ...), FORMAT=docker-archive (default) or oci-dir
# (OUT is then an OCI layout directory with the image under the tag "busybox").
set -eu

OUT=${1:?usage: make-busybox-base.sh OUT.tar [TAG]}
TAG=${2:-busybox:local}
BUSYBOX=${BUSYBOX:-/bin/busybox}
ARCH=${ARCH:-$(dpkg --print-architecture 2>/dev/null || echo amd64)}
case "$ARCH" in armhf) ARCH=arm ;; i386) ARCH=386 ;; esac
FORMAT=${FORMAT:-docker-archive}
# The applet list comes from the host's busybox when BUSYBOX is another architecture's (it cannot run here).
LIST_BUSYBOX=${LIST_BUSYBOX:-/bin/busybox}

for tool in umoci skopeo; do
  command -v "$tool" >/dev/null 2>&1 || { echo "make-busybox-base: $tool is not installed: apt-get install -y umoci skopeo busybox-static" >&2; exit 1; }
done
[ -x "$BUSYBOX" ] || { echo "make-busybox-base: $BUSYBOX is missing: apt-get install -y busybox-static" >&2; exit 1; }
if "$BUSYBOX" --list-full >/dev/null 2>&1; then
  LIST_BUSYBOX=$BUSYBOX
elif ! "$LIST_BUSYBOX" --list-full >/dev/null 2>&1; then
  echo "make-busybox-base: $LIST_BUSYBOX does not support --list-full (need busybox-static)" >&2; exit 1
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/busybox-base.XXXXXX")
trap 'rm -rf "$WORK"' EXIT INT TERM
R="$WORK/rootfs"
mkdir -p "$R/bin" "$R/etc" "$R/root" "$R/home/app" "$R/tmp"

cp "$BUSYBOX" "$R/bin/busybox"
chmod 0755 "$R/bin/busybox"
# Applet links point at /bin/busybox (relative "busybox" inside bin/), so they resolve inside any rootfs.
"$LIST_BUSYBOX" --list-full | while read -r applet; do
  [ -n "$applet" ] || continue
  [ "$applet" = "bin/busybox" ] && continue
  mkdir -p "$R/$(dirname "$applet")"
  [ -e "$R/$applet" ] || [ -L "$R/$applet" ] || ln -s /bin/busybox "$R/$applet"
done

cat > "$R/etc/passwd" <<'PW'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
app:x:1000:1000:app:/home/app:/bin/sh
PW
cat > "$R/etc/group" <<'GR'
root:x:0:
daemon:x:1:
nogroup:x:65534:
app:x:1000:
GR
chmod 0644 "$R/etc/passwd" "$R/etc/group"
chmod 0700 "$R/root"
chmod 1777 "$R/tmp"
chown 1000:1000 "$R/home/app"
chmod 0755 "$R/home/app" "$R/bin" "$R/etc"

L="$WORK/layout"
B="$WORK/bundle"
umoci init --layout "$L"
umoci new --image "$L:busybox"
umoci unpack --image "$L:busybox" "$B"
cp -a "$R/." "$B/rootfs/"
umoci repack --image "$L:busybox" "$B"
umoci config --image "$L:busybox" --config.cmd sh \
  --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --os linux --architecture "$ARCH"
umoci gc --layout "$L"

if [ "$FORMAT" = oci-dir ]; then
  rm -rf "$OUT"
  mkdir -p "$(dirname "$OUT")"
  cp -a "$L" "$OUT"
  exit 0
fi

mkdir -p "$(dirname "$OUT")"
rm -f "$OUT.tmp"
skopeo copy --quiet "oci:$L:busybox" "docker-archive:$OUT.tmp:$TAG"
mv "$OUT.tmp" "$OUT"
