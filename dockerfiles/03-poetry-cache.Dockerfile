# Step 3 — clean Poetry's cache: the downloaded archives are not part of the app.
#
# Changes over step 2 (the article's step 3):
#   - POETRY_NO_INTERACTION=1, as the article sets it. Poetry 2.5.1 reads no such variable (notebook 03
#     shows it); a build never waits for an answer anyway: a RUN has no terminal, so Poetry asks nothing.
#   - POETRY_VIRTUALENVS_IN_PROJECT=1 and POETRY_VIRTUALENVS_CREATE=1: an isolated venv even in a
#     container, at a path we know (/app/.venv), so step 5 can copy it out of the image.
#   - POETRY_CACHE_DIR=/tmp/poetry_cache, removed *in the same RUN* as the install: a file deleted
#     by a later RUN still sits in the earlier layer (03b-cache-deleted-later shows it). The
#     article does not use `--no-cache` on purpose: step 6 keeps this cache, outside the image.
# Modernised from the article: python:3.11-bookworm, Poetry 2.5.1 (as in step 2).

# The full image, as in step 2: compilers, headers and tools we will not need at run time.
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
# The package itself: Poetry installs the project too, so the code must be there.
COPY annapurna ./annapurna
# An empty README: installing the project needs the file pyproject.toml names, not its text.
RUN touch README.md

# Install, then delete the cache in the same RUN, so the layer never holds it.
RUN poetry install --without dev && rm -rf $POETRY_CACHE_DIR

# Poetry still runs the app, so Poetry stays in the runtime image (step 5 drops it).
ENTRYPOINT ["poetry", "run", "python", "-m", "annapurna.main"]
