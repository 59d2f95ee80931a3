"""The dashboard (`arbeidsindikator serve`): JSON API and front end over published tables."""

from .app import create_app, is_loopback

__all__ = ["create_app", "is_loopback"]
