# Extra 12 (not a step) — the cache dance, part 1: copy a cache mount's contents out of BuildKit.
#
# reproducible-containers/buildkit-cache-dance does this in CI: a throwaway build mounts the same
# cache id and tars it into the build's output, which `-o type=local,dest=<dir>` writes to a host
# folder (works with DOCKER_BUILDKIT=1 on Docker 20.10); the CI cache action then keeps the folder.

# Any small image with tar will do.
FROM python:3.11-slim-bookworm AS dance

# A new value per extraction, so the RUN below never comes from the layer cache.
ARG DANCE_ID

# Mount the cache step 10's install uses and pack it into /out.
RUN --mount=type=cache,id=annapurna-lab-ci-poetry,target=/cache mkdir /out && tar -C /cache -cf /out/poetry-cache.tar .

# An output with nothing but the tarball: `-o type=local` writes exactly this to the host.
FROM scratch AS export

# The tarball, alone.
COPY --from=dance /out/poetry-cache.tar /poetry-cache.tar
