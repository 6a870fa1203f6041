"""The composition root: the only module that wires adapters into services."""
