"""The composition root: the only package that wires real adapters into services and faces.

    services.py     open_services / open_control_plane: adapters chosen by Settings
    serving.py      replicas: registry, store, formats, change signal, clock (`lastgood serve`)
    watch.py        metric sources, policy files, notifiers, live verifier (`lastgood watch`)
    processes.py    `lastgood server`: the control plane, with a replica beside it
    ray_serve.py    `lastgood serve --engine ray`; ray_replica.py: one Ray Serve replica
    demo.py         the demo's second act: a replica with the watch inside, load, the story
    demo_models.py  the demo's models and data, trained on the spot

The CLI sits on top (`lastgood.cli`): each command imports what it needs from here inside its
body. The modules re-exported below import nothing heavy until called.
"""

from __future__ import annotations

from lastgood.bootstrap.processes import build_control_plane, run_server
from lastgood.bootstrap.services import open_control_plane, open_services, open_verifier

__all__ = ["build_control_plane", "open_control_plane", "open_services", "open_verifier",
           "run_server"]
