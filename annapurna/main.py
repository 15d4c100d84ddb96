"""Serve the app: `python -m annapurna.main` listens on 0.0.0.0:$PORT (default 8000)."""

import os

import uvicorn
from fastapi import FastAPI

from annapurna import __version__

app = FastAPI(title="annapurna", version=__version__)


@app.get("/")
def root() -> dict[str, str]:
    """Greet, like the article's app."""
    return {"message": "Hello from annapurna"}


@app.get("/health")
def health() -> dict[str, str]:
    """Answer 200 while the process serves requests; the lab's smoke test polls this."""
    return {"status": "ok"}


def main() -> None:
    """Run uvicorn on all interfaces so a container's published port reaches it."""
    uvicorn.run(app, host="0.0.0.0", port=int(os.environ.get("PORT", "8000")))


if __name__ == "__main__":
    main()
