"""What `status` pays to know the rollback target's stored artifacts are intact, side by side with
the preflight's integrity check, on a local artifact store.

    .venv/bin/python benchmarks/status_integrity.py [--sizes-mb 1 16 64] [--repeat 5]

Columns: the preflight's integrity check (re-hashes every byte, every time); `status`'s probe on
its first look (the same re-hash, then cached); `status`'s probe on every later look (a stat of
each blob: re-hashed only when size, modification time or inode change, or once an hour).
Target: a later look costs < 1 ms whatever the artifact's size, so a watch ticking every second
and a dashboard polling every 3 s can afford it.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import p50, print_table, timed
from lastgood.adapters.artifacts import LocalArtifactStore
from lastgood.adapters.system.clock import SystemClock
from lastgood.domain.compatibility import HostFacts
from lastgood.domain.deployments import Environment
from lastgood.domain.versions import ArtifactFile, Manifest, Resources, Version
from lastgood.services.integrity import StoredIntegrity
from lastgood.services.preflight import CheckContext, IntegrityCheck
from lastgood.testing import EPOCH


def stored_version(store: LocalArtifactStore, size_mb: int) -> Version:
    data = os.urandom(size_mb * 1024 * 1024)
    blob = store.put(io.BytesIO(data))
    manifest = Manifest((ArtifactFile("model.bin", blob.size, blob.sha256),))
    return Version(model="bench", number=1, manifest=manifest, digest=blob.sha256,
                   flavor="sklearn", created_at=EPOCH, created_by="bench")


def row(size_mb: int, repeat: int) -> list[object]:
    with tempfile.TemporaryDirectory(prefix="lastgood-bench-integrity-") as tmp:
        store = LocalArtifactStore(Path(tmp))
        version = stored_version(store, size_mb)
        ctx = CheckContext(target=version, env=Environment(name="production"), live=None,
                           host=HostFacts(python="3.11", packages={}, resources=Resources(),
                                          hostname="bench", platform="linux"))
        check = IntegrityCheck(store)
        preflight = timed(lambda: check.run(ctx), repeat)
        cold = []
        for _ in range(repeat):
            probe = StoredIntegrity(store=store, clock=SystemClock())
            cold += timed(lambda p=probe: p.problem(version), 1)
        warm = timed(lambda: probe.problem(version), repeat * 20)
        assert probe.problem(version) == ""
    return [size_mb, f"{p50(preflight):.1f}", f"{p50(cold):.1f}", f"{p50(warm):.3f}",
            f"{p50(preflight) / p50(warm):.0f}x"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes-mb", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rows = [row(size, args.repeat) for size in args.sizes_mb]
    print_table("integrity of the rollback target, p50 ms (target: later look < 1 ms)",
                ["artifact MB", "preflight re-hash", "status first look", "status later look",
                 "preflight / later"], rows)


if __name__ == "__main__":
    main()
