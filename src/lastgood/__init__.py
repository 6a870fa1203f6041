"""lastgood: put the last verified model version back into production, instantly and provably."""

__version__ = "0.1.0"
