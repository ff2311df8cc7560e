"""The local Spark Connect server's driver program: Spark's own ``SparkConnectPlugin``, hosted.

``connect_server.server_command`` has ``spark-submit`` run this file with
``spark.plugins=org.apache.spark.sql.connect.SparkConnectPlugin``: the plugin (shipped in the
pyspark wheel's ``spark-connect`` jar, the same service ``SparkConnectServer`` starts) serves
Spark Connect from this application's JVM. This program only creates the application's session
and waits; it exits when the JVM that runs it goes away.

Why not ``SparkConnectServer`` (what ``sbin/start-connect-server.sh`` runs)? Its ``main`` forces
per-session artifact isolation (``spark.sql.artifact.isolation.enabled`` and
``...alwaysApplyClassloader`` true): every client session gets a class loader of its own, and
Spark keys its cache of generated code by class loader (SPARK-44795). Every ``stockpipe run``,
``clean`` or Airflow task is a new session, so each compiled the cleaning job's generated classes
again (54 classes, about 0.8 s of Janino per quick-start run, counted in the server log) and ran
them cold, as if the JIT had never seen them. stockpipe sends no artifacts (no UDFs, jars or
files), so here the sessions share the application's class loader: the second process reuses the
first one's compiled, JIT-warm classes (0 classes compiled, counted the same way).
A client that uploads artifacts to this local server shares them with other sessions; a shared
or multi-user server (``docker-compose.yml``'s ``spark-connect``, a cluster) keeps the isolation.
"""

from __future__ import annotations

import os
import time

SHARED_CLASSLOADER_CONF = {
    "spark.sql.artifact.isolation.enabled": "false",
    "spark.sql.artifact.isolation.alwaysApplyClassloader": "false",
}
PARENT_POLL_SECONDS = 1.0


def main() -> None:
    from pyspark.sql import SparkSession

    parent = os.getppid()  # the spark-submit JVM
    builder = SparkSession.builder
    for key, value in SHARED_CLASSLOADER_CONF.items():
        builder = builder.config(key, value)
    builder.getOrCreate()
    print("stockpipe: Spark Connect host ready", flush=True)
    # the JVM waits for this program; this program waits for the JVM (a JVM killed with SIGKILL
    # cannot stop it, so it watches its parent)
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_SECONDS)
    os._exit(0)


if __name__ == "__main__":
    main()
