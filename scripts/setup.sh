#!/usr/bin/env bash
# Installs the Debian packages attnbench needs, skipping those already present.
# Run as root (or with sudo available) on Debian 12 or newer. Safe to run again.
set -euo pipefail

packages=(
  build-essential cmake git pkg-config
  nlohmann-json3-dev libcli11-dev libspdlog-dev libtbb-dev
  libgtest-dev libgmock-dev libbenchmark-dev libhwy-dev
  libopenblas0-pthread  # the trained model's matrix products (model/src/dense-forward.cpp says why)
  python3-matplotlib
  clang libclang-rt-14-dev  # the debug-asan preset: sanitizers and libFuzzer (tests/fuzz)
  slurm-wlm munge  # the Slurm sweep test starts a one-node cluster of its own (tests/slurm/cluster.sh)
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

echo "setup: installing ${missing[*]}"
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  sudo_cmd=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
