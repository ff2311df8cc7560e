#!/usr/bin/env bash
# One-shot HDFS setup for the compose stack (service hdfs-init), idempotent: creates the lake
# root and its bronze/ and silver/ zones, owned by the user the stockpipe image runs as
# (HADOOP_USER_NAME=stockpipe), group-writable, not world-writable.
# Runs as the namenode's user, the HDFS superuser of this stack.
set -euo pipefail
lake=${HDFS_LAKE_PATH:-/stockpipe}
owner=${HDFS_LAKE_OWNER:-stockpipe}
case "$lake" in
  /*) ;;
  *) echo "hdfs-init: HDFS_LAKE_PATH must be an absolute path, got '${lake}'" >&2; exit 2 ;;
esac
hdfs dfs -mkdir -p "${lake}/bronze" "${lake}/silver"
hdfs dfs -chown "${owner}:${owner}" "${lake}" "${lake}/bronze" "${lake}/silver"
hdfs dfs -chmod 0775 "${lake}" "${lake}/bronze" "${lake}/silver"
hdfs dfs -ls -d "${lake}" "${lake}/bronze" "${lake}/silver"
echo "hdfs-init: lake ready at hdfs://namenode:8020${lake}"
