#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs the Debian packages etrm needs, only those missing. Used by the README's commands.
set -euo pipefail
packages=(cmake g++ make python3 libeigen3-dev libtbb-dev doctest-dev libbenchmark-dev nlohmann-json3-dev
          libcli11-dev libfmt-dev python3-torch libopenblas0-pthread python3-matplotlib python3-numpy
          libdnnl-dev libopenmpi-dev openmpi-bin clang libfuzzer-14-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "etrm setup: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "etrm setup: missing Debian packages (${missing[*]}); run this script as root or install them with apt-get" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
