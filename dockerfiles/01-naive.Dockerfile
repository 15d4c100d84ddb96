# Step 1 — the naive Dockerfile: the article's starting point, the one we will make fast and small.
#
# Modernised from the article (2023), and nothing else changed:
#   - python:3.11-buster -> python:3.11-bookworm: buster gets no updates any more; bookworm is
#     the current Debian the official Python images are built on.
#   - `pip install poetry` still takes whatever Poetry is newest, as in the article; today that
#     is a Poetry 2.x, which reads the PEP 621 `[project]` table our pyproject.toml uses.
# Every weakness below is on purpose: the later steps fix them one at a time.

# The full image: compilers, headers and tools we will not need at run time (~1 GB).
FROM python:3.11-bookworm

# Unpinned Poetry: a new release can change how this image builds (step 2 pins it).
RUN pip install poetry

# The whole context, code and all, in one layer: any edit busts the cache for every layer below.
COPY . .

# Installs dependencies *and* the dev group (black, mypy, ruff) and keeps Poetry's cache in the image.
RUN poetry install

# Poetry runs the app too, so Poetry must stay in the runtime image.
ENTRYPOINT ["poetry", "run", "python", "-m", "annapurna.main"]
