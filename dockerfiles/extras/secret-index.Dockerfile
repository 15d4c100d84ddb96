# Extra (not a step) — a private package index whose URL carries credentials, passed as a BuildKit secret.
#
# Build with `--secret id=index_url,src=<file holding the URL>` (basecamp.build.build(secrets=...)).
# The secret is mounted as a file for the one RUN that reads it and is never written to a layer,
# the image's history or its config: `docker history --no-trunc` shows only `cat /run/secrets/...`.
# Contrast: arg-index.Dockerfile, which passes the same URL as a build ARG and leaks it.

# The slim base: pip is all this demo needs.
FROM python:3.11-slim-bookworm

# The URL is read from the secret file inside the command, so only the file's *path* is recorded.
RUN --mount=type=secret,id=index_url,target=/run/secrets/index_url \
    pip install --no-cache-dir --index-url "$(cat /run/secrets/index_url)" inflection==0.5.1
