#!/usr/bin/env bash
# One-shot Airflow setup for the compose stack (service airflow-init), idempotent:
#  1. wait for the metadata database and migrate it (`airflow db migrate`);
#  2. register the admin login of Airflow's simple auth manager from the environment
#     (AIRFLOW_ADMIN_USERNAME / AIRFLOW_ADMIN_PASSWORD) in the passwords file the API server reads.
# Nothing secret is printed. For production, use a real auth manager (FAB or Keycloak).
set -euo pipefail

: "${AIRFLOW_ADMIN_PASSWORD:?AIRFLOW_ADMIN_PASSWORD is empty: set it in .env (see .env.compose.example)}"
: "${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE:?the passwords file location is not set}"
user=${AIRFLOW_ADMIN_USERNAME:-admin}

tries=0
until airflow db check >/dev/null 2>&1; do
  tries=$((tries + 1))
  if [ "$tries" -ge 30 ]; then
    echo "airflow-init: the metadata database is unreachable; last error:" >&2
    airflow db check >&2 || true
    exit 1
  fi
  sleep 2
done

airflow db migrate

umask 077
python - "$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE" "$user" <<'PY'
import json
import os
import sys

path, user = sys.argv[1], sys.argv[2]
os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
tmp = f"{path}.tmp"
with open(tmp, "w", encoding="utf-8") as f:
    json.dump({user: os.environ["AIRFLOW_ADMIN_PASSWORD"]}, f)
    f.write("\n")
os.replace(tmp, path)
PY
echo "airflow-init: metadata database migrated; login '${user}' registered"
