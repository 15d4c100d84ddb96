# Extra 11 (not a step) — a step image plus a HEALTHCHECK that needs no shell and no curl.
#
# The step image is used as it is; only the health check is added. The check is exec form (a JSON
# array): the engine runs the venv's python directly, so it works in the slim image and in the
# distroless-like one of step 9, which has no /bin/sh to run a shell-form check (`CMD curl ...` is
# stored as ["CMD-SHELL", ...] and needs a shell) and no curl. urllib raises on a refused connection
# or an HTTP error, so python exits 1 and the engine counts the check as failed.
# Notebook 11 builds it once per step it checks (IMAGE=annapurna-lab/<step>:running).

# The step image to add the check to; its venv must be /app/.venv (steps 6, 8 and 9).
ARG IMAGE=annapurna-lab/09-hardened-runtime:running

# That image, unchanged.
FROM ${IMAGE}

# Ask /health every second (a lab value: a service checks every 10-30 s), fail after 3 misses in a row.
HEALTHCHECK --interval=1s --timeout=3s --retries=3 CMD ["/app/.venv/bin/python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2)"]
