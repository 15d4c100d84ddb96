# Extra 12 (not a step) — step 6 as a fresh CI runner sees it: no layer cache, no cache mount.
#
# Step 6 with two changes, both for measuring on one engine: an `ARG CI_RUNNER` in each stage
# (BuildKit passes a stage's build args to its RUN steps, so a value this engine has never seen
# makes every layer key new: the engine plays a fresh runner without pruning anyone's cache), and
# its own cache-mount id (annapurna-lab-ci-poetry) so notebook 10 can empty, export and import the
# mount without touching step 6's. Notebook 10 builds it with BUILDKIT_INLINE_CACHE=1 and
# `--cache-from`, saves the image as a tarball (the cache travels as a file) and moves the mount's
# contents in and out the way reproducible-containers/buildkit-cache-dance does.

# The builder: the full image has the compilers a dependency without a wheel would need.
FROM python:3.11-bookworm AS builder

# Which (simulated) CI runner this is: a new value makes every layer below new to this engine.
ARG CI_RUNNER

# Pinned Poetry, the version the lab uses on the host: the same resolver and installer everywhere.
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
RUN --mount=type=cache,id=annapurna-lab-ci-poetry,target=/tmp/poetry_cache poetry install --without dev --no-root -vvv

# The runtime: the slim image has Python and little else.
FROM python:3.11-slim-bookworm AS runtime

# The same runner id in this stage, so its layers are as new as the builder's.
ARG CI_RUNNER

# Use the venv without activating it: its python and scripts come first on PATH.
ENV VIRTUAL_ENV=/app/.venv \
    PATH="/app/.venv/bin:$PATH"

# The venv the builder made; Python sits at the same path in both bases, so its links hold.
COPY --from=builder ${VIRTUAL_ENV} ${VIRTUAL_ENV}

# The code, last (it changes most often); into /, the working directory, as in the article.
COPY annapurna ./annapurna

# The venv's python runs the app directly: no Poetry at run time.
ENTRYPOINT ["python", "-m", "annapurna.main"]
