"""Content-addressed artifact stores: a local directory or any fsspec URL."""
