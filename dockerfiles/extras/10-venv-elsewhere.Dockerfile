# Extra 10 (not a step) — the venv that does not travel: a runtime whose Python is not where the builder's was.
#
# Step 6's builder, unchanged (its layers come from the cache). The runtime starts from a tiny base
# derived from the slim stand-in in which the interpreter has moved to /opt/python/bin/ (the stand-in's
# is Debian's /usr/bin/python3.11, an official image's /usr/local/bin/python3.11; the RUN finds it either
# way). Both stand-ins are Python 3.11, so another minor version is not
# available here; another interpreter path is the same failure). A venv is not portable: its
# bin/python is a link to the interpreter that created it, by absolute path. The `runtime` stage
# builds fine and fails when it starts; the `checked` stage adds one smoke RUN that makes the build
# itself fail. Notebook 10 builds both and shows what each says.

# The builder: step 6's, instruction for instruction, so every layer comes from the cache.
FROM python:3.11-bookworm AS builder

# Pinned Poetry, as in step 6.
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

# Only the files Poetry reads to install: the project's metadata and its lock file.
COPY pyproject.toml poetry.lock ./
# An empty README, as in step 6.
RUN touch README.md

# Dependencies only into /app/.venv, with step 6's cache mount.
RUN --mount=type=cache,id=annapurna-lab-poetry,target=/tmp/poetry_cache poetry install --without dev --no-root -vvv

# A base whose Python lives elsewhere: the slim stand-in with its interpreter moved to /opt/python/bin.
FROM python:3.11-slim-bookworm AS python-elsewhere

# Move the interpreter; `python3` on PATH follows it, but nothing is left at the builder's path.
RUN py="$(readlink -f "$(command -v python3)")" && mkdir -p /opt/python/bin && mv "$py" /opt/python/bin/ \
    && ln -sf "/opt/python/bin/$(basename "$py")" "$(dirname "$py")/python3"

# The runtime on that base: step 6's, with the venv's python named directly (exec form).
FROM python-elsewhere AS runtime

# Use the venv without activating it: its python and scripts come first on PATH.
ENV VIRTUAL_ENV=/app/.venv \
    PATH="/app/.venv/bin:$PATH"

# The venv the builder made: its bin/python still points at the builder's interpreter path.
COPY --from=builder /app/.venv /app/.venv

# The code, next to the venv.
COPY annapurna /app/annapurna

# The app's folder, where `python -m annapurna.main` finds the package.
WORKDIR /app

# The venv's python, by path, as step 9 does: this is what fails to start.
ENTRYPOINT ["/app/.venv/bin/python", "-m", "annapurna.main"]

# The same runtime with the check that belongs in every final stage: import the app with the venv's python.
FROM runtime AS checked

# The smoke check: if the venv cannot run here, the build fails here, not the container in production.
RUN ["/app/.venv/bin/python", "-c", "import annapurna"]
