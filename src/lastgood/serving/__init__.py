"""The data plane: ASGI prediction gateway, warm slots, loaders, the reconciler."""
