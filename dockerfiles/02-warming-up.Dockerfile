# Step 2 — warming up: pin Poetry, copy only what the install needs, leave the dev group out.
#
# Changes over step 1 (the article's step 2):
#   - Poetry is pinned to the version the lab uses on the host (2.5.1): a new minor release
#     can change how this image builds or resolves; the same Poetry everywhere keeps it stable.
#   - A WORKDIR, and only pyproject.toml, poetry.lock and the package are copied, not the whole
#     folder (no local .venv, caches or notebooks sneaking into the image).
#   - An empty README.md is created instead of copying the real one: pyproject.toml names it, so
#     installing the project fails without the file ("Readme path ... does not exist"), but its
#     contents do not matter to the install; a README edit can no longer bust the cache.
#   - `poetry install --without dev`: black, mypy and ruff stay out of the image.
# Modernised from the article: python:3.11-bookworm (buster gets no updates), Poetry 2.5.1
# instead of 1.4.2 (it reads the PEP 621 `[project]` table our pyproject.toml uses).

# The full image, as in step 1: compilers, headers and tools we will not need at run time.
FROM python:3.11-bookworm

# Pinned Poetry, the version the lab uses on the host: the same resolver and installer everywhere.
RUN pip install poetry==2.5.1

# Everything below happens in /app instead of the image's root folder.
WORKDIR /app

# Only the files Poetry reads to install: the project's metadata and its lock file.
COPY pyproject.toml poetry.lock ./
# The package itself: Poetry installs the project too, so the code must be there.
COPY annapurna ./annapurna
# An empty README: installing the project needs the file pyproject.toml names, not its text.
RUN touch README.md

# The locked runtime dependencies and the project, without the dev group (black, mypy, ruff).
RUN poetry install --without dev

# Poetry still runs the app, so Poetry stays in the runtime image (step 5 drops it).
ENTRYPOINT ["poetry", "run", "python", "-m", "annapurna.main"]
