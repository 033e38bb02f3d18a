"""The HTTP API: ``create_app(settings)`` builds the FastAPI application served at ``/api/v1``."""

from flowloom.api.app import API_PREFIX, create_app

__all__ = ["API_PREFIX", "create_app"]
