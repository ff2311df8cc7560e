#!/usr/bin/env bash
# Healthchecks of the HDFS services (the apache/hadoop image has no stockpipe tooling):
#   healthcheck.sh namenode   the namenode answers RPC and is out of safe mode (writable)
#   healthcheck.sh datanode   the namenode counts at least one live datanode
set -euo pipefail
case "${1:-}" in
  namenode)
    hdfs dfsadmin -safemode get 2>/dev/null | grep -q "Safe mode is OFF"
    ;;
  datanode)
    hdfs dfsadmin -report -live 2>/dev/null | grep -Eq "Live datanodes \([1-9][0-9]*\)"
    ;;
  *)
    echo "usage: healthcheck.sh namenode|datanode" >&2
    exit 2
    ;;
esac
