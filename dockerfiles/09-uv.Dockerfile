# Step 9 — uv instead of Poetry: the same app, the same lock pins, installed by uv.
#
# Changes over step 6 (beyond the article: what the field adopted since):
#   - the builder installs uv (pinned) instead of Poetry, and copies pyproject.toml + uv.lock;
#     the lab derives that uv.lock in the build context from the same [project] dependencies,
#     every version constrained to the one poetry.lock pins (basecamp/uvlock.py);
#   - `uv sync --locked --no-install-project --no-dev` replaces `poetry install --no-root`:
#     --locked fails instead of relocking when uv.lock and pyproject.toml disagree,
#     --no-install-project keeps the code out of the builder (as --no-root does in step 6);
#   - the cache mount holds uv's cache (its own `id`, literal target path: the builder in Docker
#     20.10 does not expand variables in `--mount` options); UV_LINK_MODE=copy because a cache
#     mount and the venv are different file systems (uv would warn, then copy anyway);
#   - UV_COMPILE_BYTECODE=1: uv writes the .pyc files at install time (Poetry's installer does
#     too), so the first start of the app does not compile them;
#   - the runtime runs as a non-root user with a fixed uid.
# uv is installed with pip from the package index: the usual `COPY --from=ghcr.io/astral-sh/uv`
# needs a registry, and no registry answers on this machine.

# The builder: the full image, as in step 6 (same base, so the comparison is only Poetry vs uv).
FROM python:3.11-bookworm AS builder

# Pinned uv, the version the lab group locks on the host: the same resolver and installer everywhere.
RUN pip install uv==0.13.9

# uv for a build: copy from the cache, compile bytecode, no Python downloads, venv in /app, cache dir.
ENV UV_LINK_MODE=copy \
    UV_COMPILE_BYTECODE=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    UV_CACHE_DIR=/root/.cache/uv \
    UV_NO_PROGRESS=1

# uv does not read pip's settings: use the index the base gives pip (unset: uv's default index).
ENV UV_DEFAULT_INDEX=${PIP_INDEX_URL}

# Everything below happens in /app instead of the image's root folder.
WORKDIR /app

# Only the files uv reads to install: the project's metadata and its lock file.
COPY pyproject.toml uv.lock ./

# Dependencies only into /app/.venv; the cache mount (literal path = uv's cache dir) survives builds.
RUN --mount=type=cache,id=annapurna-lab-uv,target=/root/.cache/uv uv sync --locked --no-install-project --no-dev -v

# The runtime: the slim image has Python and little else.
FROM python:3.11-slim-bookworm AS runtime

# A fixed, unprivileged user: the app needs no root, and a fixed uid makes file ownership predictable.
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin app

# Use the venv without activating it: its python and scripts come first on PATH.
ENV VIRTUAL_ENV=/app/.venv \
    PATH="/app/.venv/bin:$PATH"

# The venv the builder made; Python sits at the same path in both bases, so its links hold.
COPY --from=builder ${VIRTUAL_ENV} ${VIRTUAL_ENV}

# The code, last (it changes most often); into /, the working directory, as in step 6.
COPY annapurna ./annapurna

# Everything from here on, the app included, runs as that user.
USER 10001

# The venv's python runs the app directly: no uv at run time.
ENTRYPOINT ["python", "-m", "annapurna.main"]
