"""Every copy of the configuration's description is generated from its JSON Schema, and is current.

``scripts/gen_config_docs.py`` writes the chart's ``values.schema.json`` ``config`` section and
``values.yaml`` ``config:`` block, and the configuration tables of README.md and docs/webhook.md,
from ``webhook/data/config.schema.json``.  A hand edit of a copy, or a schema change without a
regeneration, fails here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from tests.support.tools import REPO
from webhook.service.config import SCHEMA, parse_config

GENERATOR = REPO / "scripts" / "gen_config_docs.py"
CHART = REPO / "charts" / "auditwarden"


def test_the_generated_copies_are_current() -> None:
    result = subprocess.run(
        [sys.executable, str(GENERATOR), "--check"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_check_fails_when_a_copy_is_stale(tmp_path: Path) -> None:
    # The generator run on a copy of the repository's generated files, one of them edited by hand.
    for rel in ("charts/auditwarden/values.schema.json", "charts/auditwarden/values.yaml", "README.md",
                "docs/webhook.md", "webhook/data/config.schema.json", "scripts/gen_config_docs.py"):  # fmt: skip
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text((REPO / rel).read_text())
    readme = tmp_path / "README.md"
    readme.write_text(readme.read_text().replace("| `logLevel` |", "| `loglevel` |"))
    generator = tmp_path / "scripts" / "gen_config_docs.py"
    result = subprocess.run(
        [sys.executable, str(generator), "--check"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 1 and "README.md" in result.stdout
    regenerated = subprocess.run([sys.executable, str(generator)], capture_output=True, timeout=60, check=False)
    assert regenerated.returncode == 0
    assert "| `logLevel` |" in readme.read_text()


def test_the_chart_validates_config_with_the_services_schema() -> None:
    chart_schema = json.loads((CHART / "values.schema.json").read_text())["properties"]["config"]
    # The chart only adds `required` where its templates read a key directly.
    chart_targets = dict(chart_schema["properties"]["targets"])
    assert chart_targets.pop("required") == ["configMaps", "mirrorPods"]
    assert {**chart_schema["properties"], "targets": chart_targets} == SCHEMA["properties"]


def test_the_charts_default_config_is_the_services_default() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert set(values["config"]) == set(SCHEMA["properties"])
    parsed = parse_config(values["config"], source="values.yaml")
    assert parsed == parse_config({}, source="values.yaml")
