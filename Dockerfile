# syntax=docker/dockerfile:1.7
#
# The stockpipe image: Python 3.11, Java 17 (Spark), the locked Python dependencies with the
# spark, dbt, snowflake, dashboard and airflow extras, the HDFS client (libhdfs for pyarrow),
# and stockpipe itself. One image serves every stockpipe role of docker-compose.yml: the
# Airflow api-server / scheduler / dag-processor (and the tasks they run), the Spark master
# and worker (spark-class from the pyspark package, so driver and cluster versions always
# match), and the dashboard. See docs/deploy.md.
#
#   docker build -t stockpipe:local .
#   docker run --rm stockpipe:local config          # = `stockpipe config`
#
# Layers, most stable first: system packages -> HDFS client -> locked dependencies (rebuilt
# only when requirements.lock, pyproject.toml or deploy/docker/requirements-image.txt change)
# -> stockpipe's own files (every source change rebuilds only these small layers).
#
# Base images are pinned by tag; for bit-for-bit rebuilds pass digests, e.g.
#   docker build --build-arg PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:<digest> .

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm
ARG HADOOP_IMAGE=apache/hadoop:3.4.1

# ---- the HDFS client comes from the same Hadoop release the compose stack runs ----------------
FROM ${HADOOP_IMAGE} AS hadoop

# ---- locked dependencies in a virtualenv ------------------------------------------------------
FROM ${PYTHON_IMAGE} AS deps
ARG UV_VERSION=0.13.9
ENV UV_PYTHON_DOWNLOADS=never \
    UV_LINK_MODE=copy \
    UV_COMPILE_BYTECODE=1
RUN pip install --no-cache-dir --disable-pip-version-check "uv==${UV_VERSION}" \
 && uv venv --python /usr/local/bin/python3.11 /opt/venv
WORKDIR /build
COPY pyproject.toml requirements.lock ./
COPY deploy/docker/requirements-image.txt deploy/docker/build-constraints.txt ./deploy/docker/
# Runtime extras only (the lock also pins the dev tools, which the image does not need); every
# version comes from requirements.lock, plus the few image-only pins of requirements-image.txt.
RUN --mount=type=cache,target=/root/.cache/uv \
    uv pip install --python /opt/venv/bin/python \
      --constraint requirements.lock \
      --requirement pyproject.toml \
      --extra spark --extra dbt --extra snowflake --extra dashboard --extra airflow \
      --requirement deploy/docker/requirements-image.txt

# ---- runtime ----------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

LABEL org.opencontainers.image.title="stockpipe" \
      org.opencontainers.image.description="Streaming stock-bar pipeline: Kafka -> bronze -> Spark silver -> warehouse -> dbt gold -> dashboard" \
      org.opencontainers.image.licenses="Apache-2.0"

# Java for Spark and libhdfs. Debian's security archive replaces package versions in place, so
# an exact apt pin would break rebuilds; the pinned base image tag fixes the release instead.
# hadolint ignore=DL3008
RUN apt-get update \
 && mkdir -p /usr/share/man/man1 \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless \
 && ln -s "/usr/lib/jvm/java-17-openjdk-$(dpkg --print-architecture)" /usr/lib/jvm/java-17 \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/*

# The non-root user every container runs as (uid/gid 10001), and the folders it writes:
# /data (STOCKPIPE_DATA_DIR: spool, state), /warehouse (the DuckDB file), /opt/airflow.
RUN groupadd --system --gid 10001 stockpipe \
 && useradd --system --uid 10001 --gid stockpipe --create-home --home-dir /home/stockpipe \
      --shell /usr/sbin/nologin stockpipe \
 && mkdir -p /app /data /warehouse /opt/airflow/logs /opt/airflow/auth \
 && chown stockpipe:stockpipe /data /warehouse /opt/airflow /opt/airflow/logs /opt/airflow/auth \
 && chmod 0700 /opt/airflow/auth

ENV JAVA_HOME=/usr/lib/jvm/java-17 \
    HADOOP_HOME=/opt/hadoop \
    HADOOP_CONF_DIR=/opt/hadoop/etc/hadoop \
    ARROW_LIBHDFS_DIR=/opt/hadoop/lib/native \
    HADOOP_USER_NAME=stockpipe \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:/opt/hadoop/bin:${PATH} \
    SPARK_HOME=/opt/venv/lib/python3.11/site-packages/pyspark \
    PYSPARK_PYTHON=/opt/venv/bin/python \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    AIRFLOW_HOME=/opt/airflow \
    STOCKPIPE_DATA_DIR=/data \
    STOCKPIPE_DBT_PROJECT_DIR=/app/dbt

# HDFS client: only what libhdfs and `hadoop classpath` need (no YARN, MapReduce or tools).
COPY --from=hadoop --chown=0:0 /opt/hadoop/bin /opt/hadoop/bin
COPY --from=hadoop --chown=0:0 /opt/hadoop/libexec /opt/hadoop/libexec
COPY --from=hadoop --chown=0:0 /opt/hadoop/etc/hadoop /opt/hadoop/etc/hadoop
COPY --from=hadoop --chown=0:0 /opt/hadoop/lib/native /opt/hadoop/lib/native
COPY --from=hadoop --chown=0:0 /opt/hadoop/share/hadoop/common /opt/hadoop/share/hadoop/common
COPY --from=hadoop --chown=0:0 /opt/hadoop/share/hadoop/hdfs /opt/hadoop/share/hadoop/hdfs
# libhdfs starts its JVM through JNI, which does not expand classpath wildcards: a "pathing jar"
# (a manifest listing every client jar) keeps CLASSPATH a fixed, short value.
RUN hadoop classpath --jar /opt/hadoop/share/stockpipe-hdfs-classpath.jar
ENV CLASSPATH=/opt/hadoop/etc/hadoop:/opt/hadoop/share/stockpipe-hdfs-classpath.jar

# The locked dependencies (the large layer; cached until the lock changes).
COPY --from=deps /opt/venv /opt/venv

# Container tooling: the healthcheck (the image has no curl) and the Airflow bootstrap.
COPY --chmod=0755 deploy/docker/healthcheck.py /usr/local/bin/stockpipe-healthcheck
COPY --chmod=0755 deploy/docker/airflow-init.sh /usr/local/bin/stockpipe-airflow-init

# stockpipe itself, laid out as in a checkout (/app/stockpipe, /app/dbt, /app/dags) and
# installed editable without dependencies, so `stockpipe` and `import stockpipe` use /app.
WORKDIR /app
COPY pyproject.toml README.md ./
COPY deploy/docker/build-constraints.txt ./deploy/docker/build-constraints.txt
COPY stockpipe/ ./stockpipe/
COPY dags/ ./dags/
COPY --chown=stockpipe:stockpipe dbt/ ./dbt/
RUN --mount=type=bind,from=deps,source=/usr/local/bin/uv,target=/usr/local/bin/uv \
    --mount=type=cache,target=/root/.cache/uv \
    UV_PYTHON_DOWNLOADS=never UV_LINK_MODE=copy \
    uv pip install --python /opt/venv/bin/python --no-deps \
      --build-constraints deploy/docker/build-constraints.txt --editable . \
 && python -m compileall -q /app/stockpipe \
 && stockpipe --help >/dev/null

USER 10001:10001
EXPOSE 8501 8080

# A generic check: with STOCKPIPE_HEALTHCHECK_URL set it probes that URL, otherwise it checks
# that stockpipe imports and /data is writable. docker-compose.yml sets a precise check per role.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 CMD ["stockpipe-healthcheck"]

ENTRYPOINT ["stockpipe"]
CMD ["--help"]
