#!/usr/bin/env bash
# Build the Debian package of the gateway for THIS machine's architecture:
#   bash deploy/build-deb.sh [--out DIR]        -> DIR/roadside-gateway_<version>_<arch>.deb
#
# It installs the way a unit runs the gateway:
#   /opt/roadside-gateway/venv         a venv of Debian's python3 with the gateway and its deps
#   /usr/bin/gateway                   -> /opt/roadside-gateway/venv/bin/gateway
#   /lib/systemd/system/roadside-gateway.service
#   roadside-gateway system user (groups video, dialout), /etc/roadside-gateway/ (config,
#   pki/), /var/lib/roadside-gateway/ (outbox, models) -- made by the maintainer scripts.
# amd64 here; build the arm64 package the same way ON a Raspberry Pi or Jetson (64-bit
# Debian/Raspberry Pi OS/Ubuntu): deploy/debian.md. Needs python3-venv and dpkg-dev-free
# tools only (dpkg-deb); the dependencies come from PyPI (or the local pip index).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=dist
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT="$2"; shift 2 ;;
    *) echo "build-deb.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

PKG=roadside-gateway
PREFIX=/opt/$PKG
PYTHON=/usr/bin/python3
ARCH=$(dpkg --print-architecture)
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -1)
PYVER=$($PYTHON -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
STAGE=$(mktemp -d "${TMPDIR:-/tmp}/$PKG-deb.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
ROOT=$STAGE/root
mkdir -p "$ROOT$PREFIX" "$ROOT/usr/bin" "$ROOT/lib/systemd/system" \
         "$ROOT/usr/share/doc/$PKG" "$ROOT/DEBIAN" "$OUT"

# The venv is built in the staging tree, then its absolute paths are moved to $PREFIX.
$PYTHON -m venv "$ROOT$PREFIX/venv"
VPY="$ROOT$PREFIX/venv/bin/python"
"$VPY" -m pip install -q --upgrade pip
"$VPY" -m pip wheel -q --no-deps -w "$STAGE/wheel" .
"$VPY" -m pip install -q --no-compile "$STAGE"/wheel/*.whl
"$VPY" -m pip uninstall -q -y pip
grep -rlI --null "$ROOT$PREFIX" "$ROOT$PREFIX/venv/bin" "$ROOT$PREFIX/venv/pyvenv.cfg" \
  | xargs -0 -r sed -i "s|$ROOT$PREFIX|$PREFIX|g"
# Byte-compile now (with the installed paths inside), so the installed tree never grows
# __pycache__ files dpkg does not know about.
"$VPY" -m compileall -q -j 0 -s "$ROOT" -p / "$ROOT$PREFIX/venv/lib" >/dev/null

ln -s "$PREFIX/venv/bin/gateway" "$ROOT/usr/bin/gateway"
install -m 0644 deploy/roadside-gateway.service "$ROOT/lib/systemd/system/$PKG.service"
install -m 0644 deploy/gateway.example.toml README.md "$ROOT/usr/share/doc/$PKG/"
[ -f docs/security.md ] && install -m 0644 docs/security.md "$ROOT/usr/share/doc/$PKG/"

SIZE=$(du -sk "$ROOT" | cut -f1)
cat > "$ROOT/DEBIAN/control" <<EOF
Package: $PKG
Version: $VERSION
Architecture: $ARCH
Maintainer: Roadside Gateway maintainers <root@localhost>
Installed-Size: $SIZE
Depends: python$PYVER, adduser
Section: misc
Priority: optional
Homepage: file:///usr/share/doc/$PKG/README.md
Description: edge gateway for smart-city roadside units
 On-device ONNX detection, counting and serial sensors published over MQTT with a
 store-and-forward outbox. Enroll a unit with: gateway enroll BUNDLE
EOF

cat > "$ROOT/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
  if ! getent passwd roadside-gateway >/dev/null; then
    adduser --system --group --home /var/lib/roadside-gateway --no-create-home \
            --shell /usr/sbin/nologin --quiet roadside-gateway
  fi
  for g in video dialout; do
    getent group "$g" >/dev/null && adduser --quiet roadside-gateway "$g" || true
  done
  # /etc/roadside-gateway: sticky and group-writable, so the service can replace its own
  # gateway.toml (set_config) but not root's pki/ (whom it trusts).
  install -d -m 1775 -o root -g roadside-gateway /etc/roadside-gateway
  install -d -m 0750 -o roadside-gateway -g roadside-gateway /var/lib/roadside-gateway
  if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || true
  fi
fi
exit 0
EOF

cat > "$ROOT/DEBIAN/prerm" <<'EOF'
#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
  systemctl stop roadside-gateway.service >/dev/null 2>&1 || true
  systemctl disable roadside-gateway.service >/dev/null 2>&1 || true
fi
exit 0
EOF

cat > "$ROOT/DEBIAN/postrm" <<'EOF'
#!/bin/sh
set -e
case "$1" in
  remove)
    # Anything Python or pip wrote under the venv at run time.
    rm -rf /opt/roadside-gateway
    ;;
  purge)
    rm -rf /opt/roadside-gateway /etc/roadside-gateway /var/lib/roadside-gateway
    # The system user stays (Debian practice: its uid may own files elsewhere).
    ;;
esac
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null 2>&1 || true
fi
exit 0
EOF
chmod 0755 "$ROOT/DEBIAN/postinst" "$ROOT/DEBIAN/prerm" "$ROOT/DEBIAN/postrm"

DEB="$OUT/${PKG}_${VERSION}_${ARCH}.deb"
COMPRESS=(-Zgzip -z6)
dpkg-deb --help 2>/dev/null | grep -q zstd && COMPRESS=(-Zzstd -z3)
dpkg-deb --root-owner-group "${COMPRESS[@]}" --build "$ROOT" "$DEB" >/dev/null
echo "built $DEB ($(du -h "$DEB" | cut -f1), $ARCH, python $PYVER)"
