# Step 4 — dependencies before code: a code change no longer re-installs the dependencies.
#
# Changes over step 3 (the article's step 4):
#   - The first install sees only pyproject.toml and poetry.lock: `--no-root` installs the locked
#     dependencies without the project. Its layer depends on those two files only, so it stays
#     cached until the dependencies change.
#   - The package is copied after that, and a second `poetry install --without dev` installs just
#     the project (cheap: the dependencies are already there), e.g. for its scripts.
# Modernised from the article: python:3.11-bookworm, Poetry 2.5.1. In Poetry 2 `--no-root` is not
# optional here: without it Poetry fails on the missing package instead of only warning.

# The full image, as in step 3: compilers, headers and tools we will not need at run time.
FROM python:3.11-bookworm

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
# An empty README: the project install below fails without it; its text must not bust the cache.
RUN touch README.md

# Dependencies only (`--no-root`: the code is not here yet), cache deleted in the same RUN.
RUN poetry install --without dev --no-root && rm -rf $POETRY_CACHE_DIR

# The code changes most often, so it comes last: an edit re-runs only the steps from here on.
COPY annapurna ./annapurna
# Installs just the project itself; the dependencies are already in the venv.
RUN poetry install --without dev

# Poetry still runs the app, so Poetry stays in the runtime image (step 5 drops it).
ENTRYPOINT ["poetry", "run", "python", "-m", "annapurna.main"]
