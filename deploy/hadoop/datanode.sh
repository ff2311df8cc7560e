#!/usr/bin/env bash
# HDFS datanode of the compose stack, in the foreground. The directory must match
# dfs.datanode.data.dir in hdfs-site.xml.
set -euo pipefail
ensure_writable() {
  # the named volume's root comes from the image; the image's starter opens it up, this is the fallback
  [ -w "$1" ] || sudo -n chmod o+rwx "$1" 2>/dev/null || true
  if [ ! -w "$1" ]; then
    echo "$(basename "$0"): $1 is not writable by $(id -un); check the volume's ownership" >&2
    exit 1
  fi
}
data_dir=${HDFS_DATA_DIR:-/data/datanode}
ensure_writable "$(dirname "$data_dir")"
exec hdfs datanode
