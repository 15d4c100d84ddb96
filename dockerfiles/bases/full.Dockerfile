# The full stand-in: the slim one plus the compilers, git, curl and -dev libraries of the full image.
# Roughly buildpack-deps (curl + scm + the usual -dev libraries), without the heavy imaging stack.

# The slim stand-in it grows from, by image id (basecamp.bases passes it: the slim one is built first).
ARG SLIM_IMAGE=annapurna-lab/standin:3.11-slim-bookworm

# Everything the slim image has: the same interpreter at the same path.
FROM ${SLIM_IMAGE}

# Build tools and headers from Debian; apt's lists and caches go in the same RUN, so no layer keeps them.
# The versions are the suite's on the day the stand-in is built; the recipe hash records mirror and suite.
# DL3008: a pin per package would break with every Debian point release.
# hadolint ignore=DL3008
RUN export DEBIAN_FRONTEND=noninteractive \
    && apt-get update \
    && apt-get install -y --no-install-recommends \
        build-essential python3-dev pkg-config autoconf automake libtool \
        git curl wget gnupg openssh-client netbase procps unzip xz-utils bzip2 file \
        libffi-dev libssl-dev zlib1g-dev libbz2-dev libreadline-dev libsqlite3-dev \
        liblzma-dev libncurses-dev libgdbm-dev libdb-dev libexpat1-dev uuid-dev \
        libxml2-dev libxslt1-dev libyaml-dev libpq-dev libjpeg-dev libpng-dev \
        libcurl4-openssl-dev libgmp-dev libkrb5-dev \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt/* /var/log/dpkg.log

# Like the official python images: a bare `docker run` starts the interpreter.
CMD ["python3"]
