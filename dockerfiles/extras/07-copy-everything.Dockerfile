# Extra 07 (not a step) — `COPY . .` before the install: what the context does to the cache.
#
# Step 6's builder with one change: the whole context is copied before `poetry install` instead
# of only pyproject.toml and poetry.lock. Any file of the context now decides whether the install
# layer is still valid: edit a notebook, a test or the README and the install runs again, unless a
# .dockerignore keeps that file out of the context. Notebook 07 builds it on a scratch copy.

# The same builder base as step 6, so its cached `pip install poetry` layer is reused here.
FROM python:3.11-bookworm AS builder

# Pinned Poetry, as in step 6 (same instruction, so the layer comes from the cache).
RUN pip install poetry==2.5.1

# Poetry for a build (the article's settings): a venv inside the project, its cache in a known folder.
ENV POETRY_NO_INTERACTION=1 \
    POETRY_VIRTUALENVS_IN_PROJECT=1 \
    POETRY_VIRTUALENVS_CREATE=1 \
    POETRY_CACHE_DIR=/tmp/poetry_cache

# Everything below happens in /app.
WORKDIR /app

# The anti-pattern under test: every file the context holds, before the install.
COPY . .

# Dependencies into /app/.venv, Poetry's cache in its own lab mount so re-runs download nothing.
RUN --mount=type=cache,id=annapurna-lab-context-poetry,target=/tmp/poetry_cache poetry install --without dev --no-root
