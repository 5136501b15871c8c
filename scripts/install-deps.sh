#!/usr/bin/env bash
# Installs whatever Debian and npm dependencies are missing. Idempotent, and quick when all is there.
set -euo pipefail
cd "$(dirname "$0")/.."

DEB_PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git
  clang libclang-rt-14-dev clang-format
  libboost-dev librdkafka-dev libprotobuf-dev protobuf-compiler nlohmann-json3-dev
  libcpp-httplib-dev libspdlog-dev libyaml-cpp-dev libssl-dev zlib1g-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  kcat wrk curl chromium faketime
)
# Node.js may come from another repository (NodeSource bundles npm in its nodejs package): only ask
# Debian for it when the commands are missing.
command -v node >/dev/null || DEB_PACKAGES+=(nodejs)
command -v npm >/dev/null || DEB_PACKAGES+=(npm)

missing=()
for pkg in "${DEB_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Node-based end-to-end peers, pinned in tests/e2e/package.json, and the MCP conformance suite with the
# Node.js 22 it needs (both from npm), pinned in tests/conformance/package.json.
if command -v npm >/dev/null; then
  for dir in tests/e2e tests/conformance; do
    [ -f $dir/package.json ] || continue
    if [ ! -d $dir/node_modules ] || [ $dir/package.json -nt $dir/node_modules ]; then
      echo "install-deps: npm install in $dir"
      (cd $dir && npm install --no-audit --no-fund --loglevel=error && touch node_modules)
    fi
  done
fi
