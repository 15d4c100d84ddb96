# Step 8 — uv instead of Poetry: the same app, the same lock pins, installed by uv.
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
#   - UV_COMPILE_BYTECODE=1: uv writes the .pyc files at install time, so the first start of the
#     app does not compile them (Poetry compiles only with `poetry install --compile`: step 6 does not).
# The runtime is step 6's: a slim base, the venv copied from the builder, the same non-root uid.
# uv is installed with pip from the package index: the usual copy of the binary from uv's own image
# needs a container registry, and no registry answers on this machine.

# The builder: the full image, as in step 6 (same base, so the comparison is only Poetry vs uv).
FROM python:3.11-bookworm AS builder

# Pinned uv, the version the lab group locks on the host; no pip cache: it would only fill the layer.
RUN pip install --no-cache-dir uv==0.13.9

# uv for a build: copy from the cache, compile bytecode, no Python downloads, venv in /app, cache dir.
ENV UV_LINK_MODE=copy \
    UV_COMPILE_BYTECODE=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    UV_CACHE_DIR=/root/.cache/uv \
    UV_NO_PROGRESS=1

# Lab plumbing: the lab's stand-in bases hand pip the host's package index in PIP_INDEX_URL, which uv
# does not read; on an official base it is unset, so this is empty and uv uses its default index.
ENV UV_DEFAULT_INDEX=${PIP_INDEX_URL}

# Everything below happens in /app instead of the image's root folder.
WORKDIR /app

# Only the files uv reads to install: the project's metadata and its lock file.
COPY pyproject.toml uv.lock ./

# Dependencies only into /app/.venv; the cache mount (literal path = uv's cache dir) survives builds.
# -v: the lab counts downloads in uv's log, as -vvv does for Poetry; your builds don't need it.
RUN --mount=type=cache,id=annapurna-lab-uv,target=/root/.cache/uv uv sync --locked --no-install-project --no-dev -v

# The runtime: the slim image has Python and little else.
FROM python:3.11-slim-bookworm AS runtime

# An unprivileged user with a fixed id (not the article's): a hijacked app is not root in the container.
RUN groupadd --system --gid 10001 app && useradd --system --uid 10001 --gid app --no-create-home app

# Use the venv without activating it: its python and scripts come first on PATH.
ENV VIRTUAL_ENV=/app/.venv \
    PATH="/app/.venv/bin:$PATH"

# The venv the builder made; Python sits at the same path in both bases, so its links hold.
COPY --from=builder ${VIRTUAL_ENV} ${VIRTUAL_ENV}

# The code, last (it changes most often); into /, the working directory, as in step 6.
# DL3045: no WORKDIR on purpose: the slim base works in /, and the article copies the code there.
# hadolint ignore=DL3045
COPY annapurna ./annapurna

# Run as that user, by number so `runAsNonRoot` checks can verify it; the files stay root's, read-only to it.
USER 10001:10001

# The venv's python runs the app directly: no uv at run time.
ENTRYPOINT ["python", "-m", "annapurna.main"]
