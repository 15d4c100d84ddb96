# The slim stand-in: Debian's own root file system (debootstrap minbase with python3 and venv),
# made on this machine because no registry answers. basecamp.bases builds it with the classic builder
# from a context holding rootfs.tar; what varies from machine to machine comes in as build ARGs.

# No base: the bootstrapped file system below is the whole image.
FROM scratch

# The bootstrapped and trimmed root file system, unpacked as the image's one layer of files.
ADD rootfs.tar /

# The Poetry plugin that points Poetry at this machine's package index ("": the default index, no plugin).
ARG MIRROR_PLUGIN_VERSION=""

# This machine's package index and trust store (never credentials), and a UTF-8 locale. basecamp.bases
# writes this one line's variables from the machine's settings: an ENV cannot be left out by a build ARG.
ENV LANG="C.UTF-8"

# pip from the wheel Debian ships for venv, installed into /usr/local like the official images
# (and the mirror plugin when the index needs it).
RUN set -- /usr/share/python-wheels/pip-*.whl \
    && python3 "$1/pip" install --no-cache-dir --no-index /usr/share/python-wheels/pip-*.whl /usr/share/python-wheels/setuptools-*.whl \
    && if [ -n "$MIRROR_PLUGIN_VERSION" ]; then \
        pip install --no-cache-dir --no-deps "poetry-plugin-pypi-mirror==$MIRROR_PLUGIN_VERSION"; fi \
    && python --version && pip --version \
    && rm -rf /root/.cache

# Like the official python images: a bare `docker run` starts the interpreter.
CMD ["python3"]
