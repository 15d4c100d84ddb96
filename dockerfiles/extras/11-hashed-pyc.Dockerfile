# Extra 11 (not a step) — step 9 with hash-based bytecode: the same .pyc from the same sources, build after build.
#
# Step 9 with one change: SOURCE_DATE_EPOCH is set in the builder stage. CPython's py_compile then writes
# "checked-hash" .pyc files (PEP 552: the header holds a hash of the source instead of its mtime), and
# both `poetry install --compile` (through installer's compileall.compile_file) and `compileall` use
# py_compile's default. Poetry writes every installed .py at install time, so with step 9's mtime-based
# .pyc two --no-cache builds ship .pyc files that differ in their header. Here they do not. The value is
# read by Python only: the BuildKit of Docker 20.10 does not know SOURCE_DATE_EPOCH, so the files'
# timestamps in the layers still differ (notebook 11 measures both builds).

# The builder: the full image has the compilers a dependency without a wheel would need.
FROM python:3.11-bookworm AS builder

# Pinned Poetry, the version the lab uses on the host: the same resolver and installer everywhere.
# DL3042: pip's cache stays in the builder stage; the runtime image copies only the venv.
# hadolint ignore=DL3042
RUN pip install poetry==2.5.1

# Poetry for a build (the article's settings): a venv in /app/.venv *without pip*, its cache in a known folder;
# SOURCE_DATE_EPOCH (any fixed value: 2024-01-01 here) makes every .pyc compiled below hash-based.
ENV SOURCE_DATE_EPOCH=1704067200 \
    POETRY_NO_INTERACTION=1 \
    POETRY_VIRTUALENVS_IN_PROJECT=1 \
    POETRY_VIRTUALENVS_CREATE=1 \
    POETRY_VIRTUALENVS_OPTIONS_NO_PIP=1 \
    POETRY_CACHE_DIR=/tmp/poetry_cache

# Everything below happens in /app instead of the image's root folder.
WORKDIR /app

# Only the files Poetry reads to install: the project's metadata and its lock file.
COPY pyproject.toml poetry.lock ./
# An empty README, kept from step 4 as the article does: `--no-root` alone would not need it.
RUN touch README.md

# Dependencies only, compiled to .pyc as they install; the cache mount (literal path) has its own id.
RUN --mount=type=cache,id=annapurna-lab-poetry-hardened,target=/tmp/poetry_cache poetry install --without dev --no-root --compile -vvv

# The code, last (it changes most often), next to the venv.
COPY annapurna ./annapurna
# The code compiled too (-q: quiet; fails the build on a syntax error instead of at start-up).
RUN .venv/bin/python -m compileall -q annapurna

# The runtime: Python and its libraries, nothing to install or run a shell with.
FROM annapurna-lab/standin:distroless-python3-debian12 AS runtime

# Use the venv without activating it: its python and scripts come first on PATH.
ENV VIRTUAL_ENV=/app/.venv \
    PATH="/app/.venv/bin:$PATH"

# The venv, owned by root and read-only for the app: a compromised app cannot rewrite its code.
COPY --from=builder /app/.venv /app/.venv

# The compiled code, last (it changes most often).
COPY --from=builder /app/annapurna /app/annapurna

# The app's folder, where `python -m annapurna.main` finds the package (the COPYs above made it).
WORKDIR /app

# The base's nonroot user, by number (uid:gid 65532): no root inside the container.
USER 65532:65532

# Exec form (there is no shell to parse a string); the venv's python, so its links hold.
ENTRYPOINT ["/app/.venv/bin/python", "-m", "annapurna.main"]
