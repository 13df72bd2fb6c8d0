#!/usr/bin/env bash
# make demo: runs tierflow on embedded defaults (SQLite journal, a local directory archive)
# and prints what happens to a small tree of files.
set -euo pipefail
bin=${1:-build/tierflow}
"$bin" --help
