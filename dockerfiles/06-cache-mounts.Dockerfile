# Step 6 — BuildKit cache mounts: keep Poetry's cache between builds, outside every image.
#
# Changes over step 5 (the article's step 6): the builder's install runs with Poetry's cache dir
# mounted as a BuildKit cache, and the cache is *kept* (no `rm -rf`): the mount's contents persist
# on this machine from one build to the next but never land in a layer, so after a dependency
# change Poetry installs the archives it already has from the cache and downloads only new ones.
# Con (as in the article): the cache lives in this machine's BuildKit, so a fresh CI runner
# starts empty (moby/buildkit#1512). So does `docker build --no-cache`: measured on Docker 20.10,
# such a build gets an empty mount (and its contents replace the kept ones afterwards).
# Modernised from the article: bookworm bases, Poetry 2.5.1, `--no-root` mandatory in Poetry 2,
# and the mount's target is written out as /tmp/poetry_cache instead of the article's
# `$POETRY_CACHE_DIR`: the builder in Docker 20.10 does not expand variables in `--mount` options,
# so that line mounts the cache at a folder literally named `/$POETRY_CACHE_DIR` (while the
# progress output shows the expanded path), Poetry's real cache dir is a plain folder of the
# builder's layer, and every build downloads everything again. Keep the two paths equal by hand.

# The builder: the full image has the compilers a dependency without a wheel would need.
FROM python:3.11-bookworm AS builder

# Pinned Poetry, the version the lab uses on the host: the same resolver and installer everywhere.
# DL3042: pip's cache stays in the builder stage; the runtime image copies only the venv.
# hadolint ignore=DL3042
RUN pip install poetry==2.5.1

# Poetry for a build, as the article sets it: a venv in the project (/app/.venv), a known cache folder.
ENV POETRY_NO_INTERACTION=1 \
    POETRY_VIRTUALENVS_IN_PROJECT=1 \
    POETRY_VIRTUALENVS_CREATE=1 \
    POETRY_CACHE_DIR=/tmp/poetry_cache

# Everything below happens in /app instead of the image's root folder.
WORKDIR /app

# Only the files Poetry reads to install: the project's metadata and its lock file.
COPY pyproject.toml poetry.lock ./
# An empty README, kept from step 4 as the article does: `--no-root` alone would not need it.
RUN touch README.md

# Dependencies only into /app/.venv; the cache mount (literal path = POETRY_CACHE_DIR) survives builds.
# id=: the lab names its cache (default: the target path) so its --no-cache builds never empty yours.
RUN --mount=type=cache,id=annapurna-lab-poetry,target=/tmp/poetry_cache poetry install --without dev --no-root -vvv

# The runtime: the slim image has Python and little else.
FROM python:3.11-slim-bookworm AS runtime

# An unprivileged user with a fixed id (not the article's): a hijacked app is not root in the container.
RUN groupadd --system --gid 10001 app && useradd --system --uid 10001 --gid app --no-create-home app

# Use the venv without activating it: its python and scripts come first on PATH.
ENV VIRTUAL_ENV=/app/.venv \
    PATH="/app/.venv/bin:$PATH"

# The venv the builder made; Python sits at the same path in both bases, so its links hold.
COPY --from=builder ${VIRTUAL_ENV} ${VIRTUAL_ENV}

# The code, last (it changes most often); into /, the working directory, as in the article.
# DL3045: no WORKDIR on purpose: the slim base works in /, and the article copies the code there.
# hadolint ignore=DL3045
COPY annapurna ./annapurna

# Run as that user, by number so `runAsNonRoot` checks can verify it; the files stay root's, read-only to it.
USER 10001:10001

# The venv's python runs the app directly: no Poetry at run time.
ENTRYPOINT ["python", "-m", "annapurna.main"]
