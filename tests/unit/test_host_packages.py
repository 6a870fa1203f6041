"""The fast package listing (from .dist-info folder names) says what importlib.metadata says."""

from __future__ import annotations

import importlib.metadata

from lastgood.adapters.system.host import installed_packages, normal_name, packages_fingerprint


def test_the_folder_names_give_the_same_packages_as_the_metadata() -> None:
    slow: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"] if dist.metadata else None
        if name:
            slow.setdefault(normal_name(name), dist.version)
    assert installed_packages() == slow


def test_the_fingerprint_is_computed_once_and_is_a_sha256() -> None:
    first = packages_fingerprint()
    assert packages_fingerprint() is first
    assert len(first) == 64
    assert int(first, 16) >= 0
