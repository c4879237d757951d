#!/usr/bin/env bash
# Set up a development / test machine (Debian 12): system packages, a venv in .venv,
# and the package with its test extras. Safe to run again. Needs root for apt.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  mosquitto mosquitto-clients   # MQTT broker for tests and the demo's optional external broker
  victoria-metrics              # speaks InfluxDB's /api/v2/write: the test database
  influxdb                      # InfluxDB 1.6: the ledger audit's InfluxQL reader is tested against it
  socat                         # serial pseudo-terminal pairs
  vlc-bin vlc-plugin-base       # a real RTSP server for camera-source tests
  gcc make                      # the firmware bridge's C reference and its host tests; the campaign's sleep shim
  faketime                      # libfaketime: wall-clock steps of one unit in `gateway bench chaos`
  python3-venv python3-dev
  adduser                       # the Debian package's maintainer scripts (tests/e2e/test_debian_package.py)
  opencv-doc                    # OpenCV's sample clips: vtest.avi, real footage with hand-made crossing truth (tests/unit/vision/test_count.py)
  chromium chromium-driver      # headless browser for the console tests (Selenium drives Debian's build)
  fonts-dejavu-core             # text in the browser's pages and screenshots
)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test]"
echo "installed: $(.venv/bin/gateway --version)"
