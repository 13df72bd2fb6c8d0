#!/usr/bin/env bash
# make demo: runs tierflow on embedded defaults — one `tierflow up` process (coordinator with its
# SQLite journal plus one mover with a local directory archive) on a small loop-mounted ext4
# filesystem, and walks a tree of files through archive, release, restore (explicit, then
# transparent: a plain read of a released file brings it back) and remove.
set -euo pipefail
bin=$(realpath "${1:-build/tierflow}")
work=$(mktemp -d /var/tmp/tierflow-demo.XXXXXX)
port=${TIERFLOW_DEMO_PORT:-7420}
export TIERFLOW_COORDINATOR=127.0.0.1:$port
up_pid=
cleanup() {
  [ -n "$up_pid" ] && kill "$up_pid" 2>/dev/null && wait "$up_pid" 2>/dev/null || true
  # The filesystem's holder notices the unmount and exits.
  mountpoint -q "$work/fs" && umount -l "$work/fs"
  rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# Compares every file's checksum with the originals; $1 names what brought the data back.
verify() {
  (cd "$work/fs" && find . -type f -exec sha256sum {} + | sort -k2) > "$work/after.sha256"
  if cmp -s "$work/before.sha256" "$work/after.sha256"; then
    echo "every byte back after $1: checksums match the originals"
  else
    echo "MISMATCH after $1"; diff "$work/before.sha256" "$work/after.sha256"; exit 1
  fi
}
show() { printf '$ %s\n' "$*"; "$@"; }

mkdir -p "$work/fs" "$work/archive"
step "A 512 MiB ext4 filesystem on a loop device at $work/fs"
truncate -s 512M "$work/fs.img"
mkfs.ext4 -q -F -I 256 "$work/fs.img"
mount -o loop "$work/fs.img" "$work/fs"
export TIERFLOW_RUN_DIR=$work/run
mkdir -p "$work/fs/projects/climate" "$work/fs/projects/genome"
step "A small tree of files in $work/fs"
head -c 3000000 /dev/urandom > "$work/fs/projects/climate/run-001.nc"
head -c 700000 /dev/urandom > "$work/fs/projects/climate/run-002.nc"
truncate -s 64M "$work/fs/projects/genome/sparse.bam"
printf 'ACGT%.0s' $(seq 1 5000) | dd of="$work/fs/projects/genome/sparse.bam" conv=notrunc seek=1000 bs=1 status=none
echo "notes" > "$work/fs/projects/README"
(cd "$work/fs" && find . -type f -exec sha256sum {} + | sort -k2) > "$work/before.sha256"
show du -sh --apparent-size "$work/fs"
show du -sh "$work/fs"

step "Start tierflow (coordinator + mover, SQLite journal in $work/state, archive in $work/archive)"
"$bin" up --fs "$work/fs" --archive "$work/archive" --state "$work/state" \
  --listen "127.0.0.1:$port" > "$work/up.log" 2>&1 &
up_pid=$!
for _ in $(seq 1 100); do
  "$bin" status >/dev/null 2>&1 && break
  kill -0 "$up_pid" 2>/dev/null || { cat "$work/up.log"; exit 1; }
  sleep 0.1
done
show "$bin" status

step "Archive the tree and wait for the copies"
show "$bin" archive --wait "$work/fs"
show "$bin" state "$work/fs/projects/climate/run-001.nc" "$work/fs/projects/README"

step "Release the space: files keep their size, their data lives only in the archive"
show "$bin" release "$work/fs"
show "$bin" state "$work/fs/projects/climate/run-001.nc"
show du -sh "$work/fs"

step "Restore them"
show "$bin" restore --wait "$work/fs"
show "$bin" state "$work/fs/projects/climate/run-001.nc"
verify "the restore"

step "Release again, then just read: the first access brings each file back"
show "$bin" release "$work/fs"
show du -sh "$work/fs"
show sha256sum "$work/fs/projects/climate/run-001.nc"
grep run-001 "$work/before.sha256"
show "$bin" state "$work/fs/projects/climate/run-001.nc"
verify "reading the released files"

step "Remove the archive copy of one file"
show "$bin" remove --wait "$work/fs/projects/README"
show "$bin" state "$work/fs/projects/README"

step "Coordinator status"
show "$bin" status
echo
echo "demo finished; logs of the tierflow process:"
sed 's/^/  /' "$work/up.log" | tail -n 20
