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
  python3-dev python3-numpy pybind11-dev  # Python policies (plugins/python) and the Python module (python/)
  python3-pandas python3-pytest  # the Python module's data frames and its tests
  clang libclang-rt-14-dev  # the debug-asan preset: sanitizers and libFuzzer (tests/fuzz)
  slurmctld slurmd slurm-client munge  # the Slurm sweep test's one-node cluster (tests/slurm/cluster.sh)
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
  sudo_cmd=(sudo DEBIAN_FRONTEND=noninteractive)  # sudo resets the environment
fi
export DEBIAN_FRONTEND=noninteractive
# apt and dpkg print hundreds of lines: they go to a log, shown only when a step fails.
log=$(mktemp -t attnbench-setup.XXXXXX)
quiet() {
  if ! "$@" > "$log" 2>&1; then
    cat "$log" >&2
    echo "setup: failed: $* (its output is above and in $log)" >&2
    exit 1
  fi
}
quiet "${sudo_cmd[@]}" apt-get update -qq
quiet "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
rm -f "$log"
echo "setup: installed ${#missing[@]} packages"
