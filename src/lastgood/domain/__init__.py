"""The pure core of lastgood: immutable records, enums and functions. Standard library only."""
