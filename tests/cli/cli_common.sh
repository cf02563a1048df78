# SPDX-License-Identifier: Apache-2.0
# Shared start of the CLI test scripts (sourced): the case name, the binary, the repository root,
# a fresh scratch directory as the working directory, and fail().
# Environment: ETRM_BIN (the binary), ETRM_SRC (repository root), WORK (scratch directory).
set -uo pipefail
case_name="$1"
bin="${ETRM_BIN:?}"
src="${ETRM_SRC:?}"
work="${WORK:?}"
py=/usr/bin/python3
rm -rf "$work"
mkdir -p "$work"
cd "$work" || exit 1

fail() {
  echo "FAIL ($case_name): $*" >&2
  exit 1
}
