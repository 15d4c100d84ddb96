# Step 5 — multi-stage: build the venv in a full image, run it in a slim one without Poetry.
#
# Changes over step 4 (the article's step 5):
#   - `builder` stage: step 4 up to the `--no-root` install; it only makes /app/.venv.
#   - `runtime` stage on the slim image: points VIRTUAL_ENV and PATH at the venv, copies the venv
#     from the builder and the package from the context, and runs the module with plain `python`.
#     No Poetry, no compilers, no cache in it. Build it with `--target=runtime` (BuildKit skips
#     what the target does not need).
#   - not in the article: the runtime runs as an unprivileged user (uid 10001), not as root.
# Modernised from the article: python:3.11-bookworm / python:3.11-slim-bookworm, Poetry 2.5.1,
# `--no-root` mandatory in Poetry 2 (the code is never copied into the builder).

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

# Dependencies only into /app/.venv, cache deleted in the same RUN.
# -vvv: the lab counts downloads in Poetry's verbose log (steps 5, 6 and 9); your builds don't need it.
RUN poetry install --without dev --no-root -vvv && rm -rf $POETRY_CACHE_DIR

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
