#!/usr/bin/env bash
# HDFS namenode of the compose stack: format the name directory on first start (an empty
# volume), then run the namenode in the foreground. The directory must match
# dfs.namenode.name.dir in hdfs-site.xml.
set -euo pipefail
ensure_writable() {
  # the named volume's root comes from the image; the image's starter opens it up, this is the fallback
  [ -w "$1" ] || sudo -n chmod o+rwx "$1" 2>/dev/null || true
  if [ ! -w "$1" ]; then
    echo "$(basename "$0"): $1 is not writable by $(id -un); check the volume's ownership" >&2
    exit 1
  fi
}
name_dir=${HDFS_NAME_DIR:-/data/namenode}
ensure_writable "$(dirname "$name_dir")"
if [ ! -f "${name_dir}/current/VERSION" ]; then
  echo "namenode: formatting a new file system in ${name_dir}"
  hdfs namenode -format -nonInteractive -force -clusterId "${HDFS_CLUSTER_ID:-stockpipe}"
fi
exec hdfs namenode
