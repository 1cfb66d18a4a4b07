# The eddyline image: one image for the Flink JobManager and TaskManagers, the controller and the
# `helm test` Job (helm/eddyline). Flink is the distribution inside the apache-flink wheel — the
# same one the local stack runs — so the cluster, its Python workers and the jobs agree on
# versions; the Kafka connector and the S3 filesystem plugin (checkpoints in a bucket) come from
# deploy/jvm/pom.xml, as for `make jars`.
#
# Build it with `make image` (scripts/build-image.sh). That resolves the Python wheels and the
# jars on the host into .cache/image/deps/ first, so nothing inside the build needs a network,
# and on a machine with no container registry it makes the base images from Debian packages.
# On a machine with one, the public images work as they are:
#
#   make image IMAGE_BASES=public     (python:3.11-slim-bookworm, maven:3.9-eclipse-temurin-17)
#
# It runs as Flink's usual user (uid/gid 9999) on a read-only root filesystem: the chart mounts
# /opt/flink/conf (ConfigMap), /opt/flink/log, /opt/flink/tmp, /opt/flink/state and /tmp.
# tests/unit/test_dockerfile.py checks it against the chart; tests/cluster runs it.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG MAVEN_IMAGE=maven:3.9-eclipse-temurin-17

# --- the Flink Kafka connector: the jars resolved on the host, else Maven from the project's pom --
FROM ${MAVEN_IMAGE} AS jars
WORKDIR /build
COPY deploy/jvm/pom.xml pom.xml
COPY .cache/image/deps/jars/ /deps/jars/
COPY .cache/image/deps/plugins/ /deps/plugins/
RUN mkdir -p /jars /plugins/s3-fs-hadoop \
    && if ls /deps/jars/*.jar >/dev/null 2>&1; then cp /deps/jars/*.jar /jars/; \
       else mvn -B -ntp -q -f pom.xml -P flink dependency:copy-dependencies \
              -DincludeScope=runtime -DoutputDirectory=/jars; fi \
    && if ls /deps/plugins/s3-fs-hadoop/*.jar >/dev/null 2>&1; then \
         cp /deps/plugins/s3-fs-hadoop/*.jar /plugins/s3-fs-hadoop/; \
       else mvn -B -ntp -q -f pom.xml -P s3 dependency:copy-dependencies \
              -DincludeScope=runtime -DoutputDirectory=/plugins/s3-fs-hadoop; fi

# --- the virtualenv: built here so pip's build tools and the wheel files stay out of the image --
FROM ${PYTHON_IMAGE} AS venv
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# The dependencies first, in a layer of their own: a change to Eddyline's code rebuilds only the
# small layer below. Offline when the host resolved the wheels: only those, no index.
COPY .cache/image/deps/ /deps/
RUN offline="" \
    && if ls /deps/wheels/*.whl >/dev/null 2>&1; then offline="--no-index --find-links /deps/wheels"; fi \
    && python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install $offline -r /deps/requirements.txt
# Eddyline is installed editable from /opt/eddyline so that jobs/ stays a folder: the controller
# checks `.py` entries against it and the JobManager runs them from the same path.
COPY pyproject.toml README.md /opt/eddyline/
COPY deploy/ /opt/eddyline/deploy/
COPY jobs/ /opt/eddyline/jobs/
COPY udfs/ /opt/eddyline/udfs/
RUN /opt/venv/bin/pip install --no-index --no-deps --no-build-isolation -e /opt/eddyline \
    && /opt/venv/bin/python -m compileall -q /opt/eddyline/deploy /opt/eddyline/jobs /opt/eddyline/udfs

# --- the runtime ---------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}

# Java 17 for Flink; bash and flock (util-linux) for Flink's start scripts. A base made by
# `make image` has them already; a public Python image gets them here.
RUN if ! command -v java >/dev/null 2>&1; then \
        apt-get update \
        && apt-get install -y --no-install-recommends openjdk-17-jre-headless bash util-linux \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && ln -s "/usr/lib/jvm/java-17-openjdk-$(dpkg --print-architecture)" /opt/java \
    && groupadd --system --gid 9999 flink \
    && useradd --system --uid 9999 --gid flink --home-dir /opt/flink --shell /bin/bash flink

ENV JAVA_HOME=/opt/java \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:/opt/java/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

COPY --from=venv /opt/venv/ /opt/venv/
COPY --from=venv /opt/eddyline/ /opt/eddyline/

# Flink: the wheel's distribution as /opt/flink/dist (its scripts resolve the link), the Kafka
# connector beside its lib/ jars, flink-python in lib/ (PEMJA, THREAD mode's embedded Python, is
# loaded once per TaskManager from there: the chart loads pemja parent-first), the default configuration for running the image on its own
# (the chart mounts its own), and the folders Flink writes to.
COPY --from=jars /jars/ /opt/venv/lib/python3.11/site-packages/pyflink/lib/
COPY --from=jars /plugins/ /opt/venv/lib/python3.11/site-packages/pyflink/plugins/
RUN FLINK_DIST="$(python -c 'import os, pyflink; print(os.path.dirname(pyflink.__file__))')" \
    && test "$FLINK_DIST" = /opt/venv/lib/python3.11/site-packages/pyflink \
    && ls "$FLINK_DIST"/lib/flink-sql-connector-kafka-*.jar \
    && ls "$FLINK_DIST"/plugins/metrics-prometheus/*.jar \
    && ls "$FLINK_DIST"/plugins/s3-fs-hadoop/flink-s3-fs-hadoop-*.jar \
    && cp "$FLINK_DIST"/opt/flink-python-*.jar "$FLINK_DIST"/lib/ \
    && mkdir -p /opt/flink/conf /opt/flink/log /opt/flink/tmp /opt/flink/state \
    && ln -s "$FLINK_DIST" /opt/flink/dist \
    && cp "$FLINK_DIST"/conf/config.yaml "$FLINK_DIST"/conf/log4j-console.properties /opt/flink/conf/ \
    && chown -R 9999:9999 /opt/flink/conf /opt/flink/log /opt/flink/tmp /opt/flink/state

# PYTHONPATH: a job in THREAD mode runs Python inside the TaskManager's JVM (PEMJA), whose
# interpreter starts from the base Python and finds pemja, pyflink and the jobs only through it.
ENV FLINK_HOME=/opt/venv/lib/python3.11/site-packages/pyflink \
    FLINK_CONF_DIR=/opt/flink/conf \
    FLINK_LOG_DIR=/opt/flink/log \
    PYTHONPATH=/opt/venv/lib/python3.11/site-packages:/opt/eddyline

WORKDIR /opt/eddyline
USER 9999:9999
# JobManager RPC, blob, REST/Web UI; TaskManager data, RPC; Flink metrics; controller metrics.
EXPOSE 6123 6124 8081 6121 6122 9249 9247
CMD ["eddyline", "--help"]
