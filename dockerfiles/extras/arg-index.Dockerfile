# Extra (not a step) — the anti-pattern: a package-index URL with credentials passed as a build ARG.
#
# Every RUN that uses an ARG records its value in the image's history (`docker history --no-trunc`
# shows `|1 INDEX_URL=https://user:password@...`), and anyone who can pull the image can read it.
# Use secret-index.Dockerfile (a BuildKit secret) instead.

# The slim base: pip is all this demo needs.
FROM python:3.11-slim-bookworm

# Declared for the build only — yet its value lands in the history of every RUN below that uses it.
ARG INDEX_URL

# The same install as the secret version, with the URL from the ARG.
RUN pip install --no-cache-dir --index-url "$INDEX_URL" inflection==0.5.1
