"""Where the live alias points during a canary, not only after it: the Terraform stand-in records
each point (tests/standins/terraform.py, ``point_alias``), taken from main.tf's own expressions
(tests/terraform_eval.py). A canary that gave the newest version all the traffic from its first
apply, or kept the base on a weight, would still end on the newest and pass the tests that only
look at the end."""

from __future__ import annotations

import json

from tests.deploy_harness import new_image_version, run_deploy, set_spec


def test_during_a_canary_the_base_serves_and_the_newest_takes_its_share(aws, workdir, server, built_bento, tmp_path):
    assert run_deploy("deploy", workdir, server.url, tmp_path, args=("--bento", built_bento)).returncode == 0
    set_spec(workdir, canary_percent=10, canary_minutes=1)
    done = new_image_version(workdir, server, built_bento, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    points = json.loads((tmp_path / "standin-state" / "alias-points.json").read_text())
    assert [(p["live"], p["weights"]) for p in points] == [
        ("1", {}),  # the first deploy: version 1, all of the traffic
        ("1", {"2": 0.1}),  # the canary: version 1 keeps 90 %, the new version 2 takes 10 %
        ("2", {}),  # promoted: version 2, all of the traffic
    ], points
