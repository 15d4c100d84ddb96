# Step 3b — the anti-pattern: the same cache, deleted by a separate, later RUN.
#
# Changes over step 3: the `rm -rf $POETRY_CACHE_DIR` moves out of the install's RUN into its own
# RUN below it. The cache is gone from the final file system, but every layer is kept in the image:
# the install's layer still holds the whole cache, so the image is as big as step 2's.
# Modernised like step 3: python:3.11-bookworm, Poetry 2.5.1.

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
# The package itself: Poetry installs the project too, so the code must be there.
COPY annapurna ./annapurna
# An empty README: installing the project needs the file pyproject.toml names, not its text.
RUN touch README.md

# Install, keeping the cache in this layer (the mistake: nothing below can take it out again).
RUN poetry install --without dev
# Too late: this only hides the cache in a new layer; the layer above still ships it.
RUN rm -rf $POETRY_CACHE_DIR

# Poetry still runs the app, so Poetry stays in the runtime image (step 5 drops it).
ENTRYPOINT ["poetry", "run", "python", "-m", "annapurna.main"]
