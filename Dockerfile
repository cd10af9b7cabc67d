# ci-gate as a container image: Debian slim, Debian's Python, ci-gate and its hash-pinned dependencies
# in a venv, a non-root user. For GitLab job images and Jenkins agents (docs/ci-adapters.md):
#   docker build --tag ci-gate:0.1.0 .
#   docker run --rm -v "$PWD:/work" -w /work ci-gate:0.1.0 ci-gate gate oci-archive:image.tar --policy builtin:dod
# CI builds the same image without a Docker daemon: tests/adapters/ci_gate_image.py runs these very
# instructions on a debootstrap'ed bookworm root filesystem (what debian:bookworm-slim is made from)
# and packs it with umoci, then gates it with ci-gate's own builtin:dod.
FROM debian:bookworm-slim@sha256:7b140f374b289a7c2befc338f42ebe6441b7ea838a042bbd5acbfca6ec875818

RUN apt-get update \
    && apt-get install --yes --no-install-recommends python3 python3-venv ca-certificates \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb

# Dependencies first (they change less often than ci-gate): only the files whose hashes the lock names.
COPY requirements/ci-gate.lock requirements/build.lock /tmp/ci-gate/requirements/
RUN python3 -m venv /opt/ci-gate \
    && /opt/ci-gate/bin/pip install --no-cache-dir --disable-pip-version-check --require-hashes --only-binary=:all: \
        -r /tmp/ci-gate/requirements/ci-gate.lock -r /tmp/ci-gate/requirements/build.lock

COPY pyproject.toml README.md build_hooks.py /tmp/ci-gate/
COPY ci_gate /tmp/ci-gate/ci_gate
# ci-gate from this checkout (never by name from an index); the build tools leave with the sources;
# no setuid/setgid programs are left; the user that runs ci-gate owns nothing but its home.
RUN /opt/ci-gate/bin/pip install --no-cache-dir --disable-pip-version-check --no-deps --no-build-isolation \
        --no-index /tmp/ci-gate \
    && /opt/ci-gate/bin/pip uninstall --yes --disable-pip-version-check setuptools pip \
    && rm -rf /tmp/ci-gate \
    && find / -xdev -perm /6000 ! -type l -exec chmod ug-s {} + \
    && useradd --uid 10001 --user-group --create-home --shell /usr/sbin/nologin ci-gate

ENV PATH=/opt/ci-gate/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
WORKDIR /home/ci-gate
HEALTHCHECK CMD ["ci-gate", "--version"]
LABEL org.opencontainers.image.title="ci-gate" \
      org.opencontainers.image.description="A container-image policy gate for CI (Anchore policy language)" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="ci-gate" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.base.name="docker.io/library/debian:bookworm-slim"
CMD ["ci-gate", "--help"]
