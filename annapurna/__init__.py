"""annapurna: the tiny FastAPI app from "Blazing fast Python Docker builds with Poetry"."""

__version__ = "0.1.0"
