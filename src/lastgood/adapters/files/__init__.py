"""Adapters for files a person writes: watch policies."""
