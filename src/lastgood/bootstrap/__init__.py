"""The composition root: the only package that wires real adapters into services and faces.

    services.py   open_services / open_control_plane: adapters chosen by Settings
    serving.py    replicas: registry, store, formats, change signal, clock (`lastgood serve`)
    watch.py      metric sources, policy files, notifiers, live verifier (`lastgood watch`)
    processes.py  `lastgood server`: the control plane, with a replica beside it
    demo.py       the demo's in-process replica with the watch inside
    world.py      the `World` the CLI is given (lastgood.cli.hooks)

Everything is imported on first use: `lastgood --help` imports this module, `world.py` and
the CLI's command table, nothing else. `main()` is the `lastgood` console script.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lastgood.bootstrap.processes import build_control_plane, run_server
    from lastgood.bootstrap.services import open_control_plane, open_services, open_verifier
    from lastgood.services.container import Ports, Services, wire

__all__ = ["Ports", "Services", "build_control_plane", "main", "open_control_plane",
           "open_services", "open_verifier", "run_server", "wire"]

_LAZY = {"Ports": "lastgood.services.container", "Services": "lastgood.services.container",
         "wire": "lastgood.services.container",
         "open_services": "lastgood.bootstrap.services",
         "open_control_plane": "lastgood.bootstrap.services",
         "open_verifier": "lastgood.bootstrap.services",
         "build_control_plane": "lastgood.bootstrap.processes",
         "run_server": "lastgood.bootstrap.processes"}


def __getattr__(name: str) -> Any:
    """The root's parts on first use: `lastgood --help` never wires anything."""
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    """The `lastgood` console script."""
    from lastgood.bootstrap.world import RootWorld
    from lastgood.cli.main import build_cli

    build_cli(RootWorld())(prog_name="lastgood")
