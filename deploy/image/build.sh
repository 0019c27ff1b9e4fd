#!/usr/bin/env bash
# Builds the customs container image without Docker: a static release
# binary, a root filesystem holding only that binary, a CA bundle and a
# numeric user, and an OCI image layout assembled with umoci (Debian).
#
#   deploy/image/build.sh binary OUT        static release binary to OUT
#   deploy/image/build.sh rootfs DIR BIN    the image's files under DIR
#   deploy/image/build.sh image LAYOUT [BIN]  OCI layout, tag customs:latest
#
# The Dockerfile beside this script runs the same `binary` and `rootfs`
# steps, so both images hold the same files, user, entrypoint and command.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
UID_GID=65532:65532
ENTRYPOINT=/usr/local/bin/customs

# apt_install PACKAGE: from Debian, refreshing the package lists if needed.
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq "$1" >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null 2>&1; apt-get install -y -qq "$1" >/dev/null 2>&1; }
}

# musl gives a fully static binary; where the musl target cannot be added,
# a glibc static build (crt-static) is the fallback.
binary() {
  local out="$1" target=x86_64-unknown-linux-musl
  if { rustup target list --installed 2>/dev/null | grep -qx "$target" \
        || rustup target add "$target" >/dev/null 2>&1; } \
     && { command -v musl-gcc >/dev/null 2>&1 || apt_install musl-tools; }; then
    # musl-gcc builds the C code of ring and mimalloc.
    echo "building the static release binary ($target)"
    (cd "$ROOT" && cargo build --release --locked --target "$target")
  else
    target=x86_64-unknown-linux-gnu
    echo "musl target or musl-gcc unavailable: building a static glibc binary (crt-static)"
    (cd "$ROOT" && RUSTFLAGS="-C target-feature=+crt-static" \
      cargo build --release --locked --target "$target")
  fi
  local built="$ROOT/target/$target/release/customs"
  # No program interpreter (PT_INTERP): nothing to load from the image.
  if readelf -l "$built" | grep -q 'Requesting program interpreter'; then
    echo "$built is not static" >&2; exit 1
  fi
  mkdir -p "$(dirname "$out")"
  # The release profile keeps debug info for profiling; the image does not.
  strip -o "$out" "$built" 2>/dev/null || cp "$built" "$out"
}

# The whole image: no shell, no libc, nothing to exec but customs.
rootfs() {
  local dir="$1" bin="$2"
  local ca=/etc/ssl/certs/ca-certificates.crt
  [ -s "$ca" ] || apt_install ca-certificates
  install -D -m 0755 "$bin" "$dir$ENTRYPOINT"
  install -D -m 0644 "$ca" "$dir$ca"
  install -D -m 0644 "$ROOT/deploy/image/passwd" "$dir/etc/passwd"
  install -D -m 0644 "$ROOT/deploy/image/group" "$dir/etc/group"
  # Mount points: config and policies (read-only), secrets, the crossing log.
  install -d -m 0755 "$dir/etc/customs" "$dir/run/secrets/customs"
  install -d -m 0750 -o "${UID_GID%%:*}" -g "${UID_GID##*:}" \
    "$dir/var/lib/customs" "$dir/var/lib/customs/audit"
}

image() {
  local layout="$1" bin="${2:-}"
  command -v umoci >/dev/null 2>&1 || apt_install umoci
  if [ -z "$bin" ]; then bin="$ROOT/target/deploy-checks/customs"; [ -x "$bin" ] || binary "$bin"; fi
  local bundle; bundle="$(mktemp -d)"
  trap 'rm -rf "$bundle"' RETURN
  rm -rf "$layout"
  umoci init --layout "$layout"
  umoci new --image "$layout:customs"
  umoci unpack --image "$layout:customs" "$bundle/b"
  rootfs "$bundle/b/rootfs" "$bin"
  umoci repack --image "$layout:customs" "$bundle/b"
  umoci config --image "$layout:customs" --tag latest \
    --config.user "$UID_GID" \
    --config.entrypoint "$ENTRYPOINT" \
    --config.cmd serve --config.cmd --config --config.cmd /etc/customs/customs.yaml \
    --config.cmd --log-format --config.cmd json \
    --config.workingdir /var/lib/customs \
    --config.exposedports 8080/tcp --config.exposedports 9090/tcp \
    --config.volume /var/lib/customs/audit \
    --config.label org.opencontainers.image.title=customs \
    --history.comment "customs static binary, CA bundle, user 65532"
  umoci rm --image "$layout:customs"
  umoci gc --layout "$layout"
  echo "OCI image layout: $layout (tag latest)"
}

case "${1:-}" in
  binary) binary "$2" ;;
  rootfs) rootfs "$2" "$3" ;;
  image) image "$2" "${3:-}" ;;
  *) echo "usage: $0 binary OUT | rootfs DIR BIN | image LAYOUT [BIN]" >&2; exit 2 ;;
esac
