# Extra 12 (not a step) — the cache dance, part 2: put saved contents back into a cache mount.
#
# On the next (fresh) runner the folder comes back from the CI cache; this build, with that folder
# as its context, unpacks the tarball into the cache mount, so the real build's install finds its
# archives there. The output is a marker file, written to a throwaway folder with `-o type=local`.

# Any small image with tar will do.
FROM python:3.11-slim-bookworm AS dance

# A new value per injection, so the RUN below never comes from the layer cache.
ARG DANCE_ID

# The context's tarball bind-mounted (no layer), unpacked into the cache mount.
RUN --mount=type=bind,source=poetry-cache.tar,target=/in/poetry-cache.tar --mount=type=cache,id=annapurna-lab-ci-poetry,target=/cache tar -C /cache -xf /in/poetry-cache.tar && echo "$DANCE_ID" > /injected

# An output with nothing but the marker, so the RUN above is part of what the build must do.
FROM scratch AS export

# The marker.
COPY --from=dance /injected /injected
