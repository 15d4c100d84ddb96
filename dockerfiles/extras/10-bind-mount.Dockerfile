# Extra 10 (not a step) — fix 2 for the version bump, tried: bind-mount the metadata instead of copying it.
#
# Step 6 with one change: pyproject.toml and poetry.lock are not copied into a layer; the install
# RUN binds them from the build context (`--mount=type=bind`, read-only) for its duration only.
# Often suggested against the version bump; BuildKit's source says a read-only mount's *content* is
# part of the RUN's cache key (moby/buildkit, solver/llbsolver/ops/exec.go, `getMountDeps`), so
# a bump should still re-run the install. Notebook 10 measures whether it does on this engine.

# The builder: the full image has the compilers a dependency without a wheel would need.
FROM python:3.11-bookworm AS builder

# Pinned Poetry, the version the lab uses on the host (the same layer as step 6's, from the cache).
# DL3042: pip's cache stays in the builder stage; the runtime image copies only the venv.
# hadolint ignore=DL3042
RUN pip install poetry==2.5.1

# Poetry for a build, as in step 6: a venv in the project (/app/.venv), a known cache folder.
ENV POETRY_NO_INTERACTION=1 \
    POETRY_VIRTUALENVS_IN_PROJECT=1 \
    POETRY_VIRTUALENVS_CREATE=1 \
    POETRY_CACHE_DIR=/tmp/poetry_cache

# Everything below happens in /app instead of the image's root folder.
WORKDIR /app

# Dependencies only; the metadata is bound read-only for this RUN (no COPY layer), the cache mount as in step 6.
RUN --mount=type=bind,source=pyproject.toml,target=/app/pyproject.toml \
    --mount=type=bind,source=poetry.lock,target=/app/poetry.lock \
    --mount=type=cache,id=annapurna-lab-poetry-v10,target=/tmp/poetry_cache \
    poetry install --without dev --no-root -vvv

# The runtime: the slim image has Python and little else.
FROM python:3.11-slim-bookworm AS runtime

# An unprivileged user with a fixed id, as in step 6.
RUN groupadd --system --gid 10001 app && useradd --system --uid 10001 --gid app --no-create-home app

# Use the venv without activating it: its python and scripts come first on PATH.
ENV VIRTUAL_ENV=/app/.venv \
    PATH="/app/.venv/bin:$PATH"

# The venv the builder made; Python sits at the same path in both bases, so its links hold.
COPY --from=builder ${VIRTUAL_ENV} ${VIRTUAL_ENV}

# The code, last (it changes most often); into /, as in step 6.
# DL3045: no WORKDIR on purpose: the slim base works in /, as step 6's does.
# hadolint ignore=DL3045
COPY annapurna ./annapurna

# Run as that user, by number so `runAsNonRoot` checks can verify it.
USER 10001:10001

# The venv's python runs the app directly: no Poetry at run time.
ENTRYPOINT ["python", "-m", "annapurna.main"]
