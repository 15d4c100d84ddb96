# Extra 10 (not a step) — fix 1 for the version bump: the dependency layer reads a version-free pyproject.toml.
#
# Step 6 with three changes. A small `version-free` stage copies pyproject.toml and rewrites its
# version to a constant; the builder copies *that* file (`COPY --from=version-free`) before the
# install. A bump changes the small stage's layers, but the bytes the builder copies stay the same,
# and BuildKit keys a COPY on the content of what it copies: the install layer stays cached.
# poetry.lock needs no rewrite: the pinned Poetry's content-hash does not cover the version.
# After the dependencies, the real pyproject.toml and the code come in and `poetry install
# --only-root` installs the project alone (no dependency), so the image's metadata carries the real
# version. The runtime copies /app (venv and code) from the builder, where that editable install points.
# The issue's recipe (astral-sh/uv#14256 quotes it for Poetry); notebook 10 measures it.

# A throwaway stage that only rewrites the version: the slim base has sed, and nothing of it ships.
FROM python:3.11-slim-bookworm AS version-free

# A folder of its own for the one file it rewrites.
WORKDIR /src

# The real pyproject.toml: this layer changes on every bump, and that is all right, it never ships.
COPY pyproject.toml ./
# The first `version = ...` line (the [project] table's) becomes a constant: the output is the same for every version.
RUN sed -i '0,/^version = .*/s//version = "0.0.0"/' pyproject.toml

# The builder: step 6's.
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

# The version-free pyproject.toml: the same bytes whatever the version, so this COPY stays cached on a bump.
COPY --from=version-free /src/pyproject.toml ./
# The lock, as in step 6 (a bump leaves it unchanged).
COPY poetry.lock ./
# An empty README, kept from step 6: the project install at the end reads the `readme` field.
RUN touch README.md

# Dependencies only, as in step 6 (its own cache id, so it never empties or fills step 6's).
RUN --mount=type=cache,id=annapurna-lab-poetry-v10,target=/tmp/poetry_cache poetry install --without dev --no-root -vvv

# Now the real pyproject.toml (real version): this layer and the ones below re-run on a bump.
COPY pyproject.toml ./
# The code, last (it changes most often).
COPY annapurna ./annapurna
# The project alone (`--only-root`: no dependency is installed or removed): its metadata says the real version.
RUN poetry install --only-root

# The runtime: the slim image has Python and little else.
FROM python:3.11-slim-bookworm AS runtime

# An unprivileged user with a fixed id, as in step 6.
RUN groupadd --system --gid 10001 app && useradd --system --uid 10001 --gid app --no-create-home app

# Use the venv without activating it: its python and scripts come first on PATH.
ENV VIRTUAL_ENV=/app/.venv \
    PATH="/app/.venv/bin:$PATH"

# The venv, with the project's editable install pointing at /app.
COPY --from=builder /app/.venv /app/.venv
# The code, at the path the editable install points to.
COPY --from=builder /app/annapurna /app/annapurna

# The app's folder, where `python -m annapurna.main` finds the package.
WORKDIR /app

# Run as that user, by number so `runAsNonRoot` checks can verify it.
USER 10001:10001

# The venv's python runs the app directly: no Poetry at run time.
ENTRYPOINT ["python", "-m", "annapurna.main"]
