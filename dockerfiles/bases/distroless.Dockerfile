# The distroless stand-in (for distroless/python3-debian12): the interpreter's Debian packages and
# nothing else. No shell, no coreutils, no apt or dpkg, and user nonroot (65532) as in `:nonroot`.

# The slim base whose apt downloads the packages (basecamp.bases passes config.SLIM_BASE).
ARG SLIM_IMAGE=python:3.11-slim-bookworm

# Stage 1: the interpreter's Debian packages unpacked into /rootfs, files only
# (`dpkg-deb -x`: none of their maintainer scripts runs).
FROM ${SLIM_IMAGE} AS unpack

# Download and unpack; trim docs, man pages and locales; write the accounts (root, nonroot, nobody, none
# with a login shell), nsswitch and the CA bundle. The packages: what libpython3.11-stdlib depends on
# (minus the NIS module's libnsl2/libtirpc3), the C/C++ runtime of compiled wheels, a few data packages.
# DL3003: `cd` inside this one RUN keeps the paths relative to /rootfs; a WORKDIR would outlive it.
# hadolint ignore=DL3003
RUN export DEBIAN_FRONTEND=noninteractive \
    && apt-get update \
    && mkdir -p /rootfs /tmp/debs && cd /tmp/debs \
    && apt-get download \
        base-files netbase tzdata media-types \
        libc6 libgcc-s1 libstdc++6 libssl3 zlib1g libexpat1 libffi8 libbz2-1.0 liblzma5 \
        libcrypt1 libdb5.3 libncursesw6 libtinfo6 libreadline8 libsqlite3-0 libuuid1 \
        python3.11-minimal libpython3.11-minimal libpython3.11-stdlib \
    && for deb in *.deb; do dpkg-deb -x "$deb" /rootfs; done \
    && cd /rootfs \
    && find usr/share/doc -type f ! -name copyright -delete \
    && rm -rf usr/share/man usr/share/info usr/share/lintian usr/share/locale usr/share/gcc usr/share/gdb \
        usr/lib/*/gconv etc/profile.d etc/update-motd.d \
    && mkdir -p etc/ssl/certs tmp root home/nonroot \
    && cp /etc/ssl/certs/ca-certificates.crt etc/ssl/certs/ \
    && printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n' > etc/passwd \
    && printf 'root:x:0:\nnonroot:x:65532:\nnobody:x:65534:\n' > etc/group \
    && printf 'hosts: files dns\n' > etc/nsswitch.conf \
    && printf 'include /etc/ld.so.conf.d/*.conf\n' > etc/ld.so.conf \
    && ln -s python3.11 usr/bin/python3 \
    && chmod 1777 tmp && chmod 700 root home/nonroot \
    && chown 65532:65532 home/nonroot \
    && ldconfig -r /rootfs \
    && rm -rf /tmp/debs /var/lib/apt/lists/*

# Stage 2: only the unpacked files, nothing of the slim image they were unpacked in.
FROM scratch

# The packages' files, the accounts and the trust store.
COPY --from=unpack /rootfs/ /

# The distroless image's PATH and locale, and where Python's ssl finds the CA bundle.
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt

# Like the distroless python image: the interpreter itself, no shell to parse a command.
ENTRYPOINT ["/usr/bin/python3.11"]
