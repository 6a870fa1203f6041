"""The registry both watch tests start from: a verified good wine model live, a mislabelled one
registered next to it, on a private embedded registry."""

from __future__ import annotations

from pathlib import Path

from lastgood.bootstrap import open_services
from lastgood.bootstrap.demo_models import train, train_mislabelled
from lastgood.config import load_settings
from lastgood.services.container import Services
from lastgood.services.registry import RegisterRequest

MODEL, ENV = "wine-quality", "production"


def good_live_bad_registered(tmp_path: Path) -> Services:
    """v1 (good) live and verified on its accuracy, v2 (bad) registered."""
    settings = load_settings({"LASTGOOD_HOME": str(tmp_path / "home"),
                              "LASTGOOD_ACTOR": "tester", "LASTGOOD_SMOKE_TEST": "off"})
    services = open_services(settings)
    good = train(tmp_path)[0]
    for item in (good, train_mislabelled(tmp_path)):
        services.registry.register(RegisterRequest(
            model=MODEL, path=item["path"], tag=item["tag"], schema=item["schema"],
            golden=item["golden"]), actor="tester")
    services.deployments.deploy(MODEL, 1, env=ENV, reason="release", actor="tester")
    services.deployments.verify(MODEL, env=ENV, baseline={"accuracy": good["accuracy"]},
                                reason="offline metrics", actor="tester")
    return services
