"""The health policy of each (model, env): from a policy file where it names one, else lastgood's
default ("errors first", see `lastgood.domain.watching.default_policy`)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import timedelta

from lastgood.domain.health import HealthPolicy
from lastgood.domain.watching import default_policy


class PolicyBook:
    """Looks policies up by (model, env); builds and keeps the default for the others."""

    def __init__(self, policies: Sequence[HealthPolicy] = (), *, available: Collection[str],
                 bake_window: timedelta | None = None, cooldown: timedelta | None = None):
        self._given = {(p.model, p.env): p for p in policies}
        self._available = frozenset(available)
        self._bake, self._cooldown = bake_window, cooldown
        self._defaults: dict[tuple[str, str], HealthPolicy] = {}

    def policy(self, model: str, env: str) -> HealthPolicy:
        """The file's policy for (model, env), or the default one."""
        key = (model, env)
        if key in self._given:
            return self._given[key]
        if key not in self._defaults:
            options = {k: v for k, v in (("bake_window", self._bake),
                                         ("cooldown", self._cooldown)) if v is not None}
            self._defaults[key] = default_policy(model, env, available=self._available,
                                                 **options)
        return self._defaults[key]

    def from_file(self, model: str, env: str) -> bool:
        """Whether a policy file names (model, env)."""
        return (model, env) in self._given
