"""OpenShift's APIServer ``cluster`` object: the audit policy its operators render, judged like any policy.

The rendering is checked here against library-go's own expectations (the golden files of its
``TestGetAuditPolicy``, copied into tests/data/openshift/ at the pinned version), and in
tests/oracle/test_openshift_differential.py against library-go's code itself.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from tests.support.tools import DATA, REPO
from webhook.cli import main
from webhook.context import OPENSHIFT_DIR, build_context, packaged_openshift_manifests
from webhook.core import openshift
from webhook.core.verdict import judge

GOLDEN = DATA / "openshift" / "library-go-testdata"


def provenance_rows(path: Path) -> dict[str, str]:
    """file name -> sha256, from a PROVENANCE.md table."""
    rows = {}
    for line in path.read_text("utf-8").splitlines():
        cells = [c.strip().strip("`") for c in line.split("|")[1:-1]]
        if cells and re.fullmatch(r"[0-9a-f]{64}", cells[-1]):
            rows[cells[0]] = cells[-1]
    return rows


@pytest.mark.parametrize("folder", [OPENSHIFT_DIR, DATA / "openshift"], ids=["package", "tests"])
def test_every_copied_file_has_the_checksum_its_provenance_names(folder: Path) -> None:
    rows = provenance_rows(folder / "PROVENANCE.md")
    copied = sorted(str(p.relative_to(folder)) for p in folder.rglob("*.yaml"))
    assert sorted(rows) == copied
    for name, digest in rows.items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, name


def test_the_packaged_manifests_are_the_files_the_oracle_module_pins() -> None:
    pins = (REPO / "tests" / "oracle" / "openshift" / "go.mod").read_text("utf-8")
    version = re.search(r"github.com/openshift/library-go (\S+)", pins)
    assert version is not None
    assert version.group(1) in (OPENSHIFT_DIR / "PROVENANCE.md").read_text("utf-8")


# library-go audit_policies_test.go TestGetAuditPolicy, at the pinned version: (config, golden file).
SCENARIOS: list[tuple[dict[str, Any], str]] = [
    ({"profile": "Default"}, "default.yaml"),
    ({"profile": "WriteRequestBodies"}, "writerequestbodies.yaml"),
    ({"profile": "AllRequestBodies"}, "allrequestbodies.yaml"),
    ({"profile": "None"}, "none.yaml"),
    ({"profile": "None", "customRules": [{"group": "system:authenticated:oauth", "profile": "WriteRequestBodies"}]},
     "oauth.yaml"),
    ({"profile": "None", "customRules": [{"group": "system:authenticated:oauth", "profile": "WriteRequestBodies"},
                                         {"group": "system:authenticated", "profile": "AllRequestBodies"}]},
     "multipleCr.yaml"),
]  # fmt: skip
ERRORS = [
    ({"profile": "InvalidString"}, 'unknown audit profile "InvalidString"'),
    ({"profile": "None", "customRules": [{"group": "InvalidGroup", "profile": "InvalidProfile"}]},
     'unknown audit profile "InvalidProfile" in customRules for group "InvalidGroup"'),
]  # fmt: skip


@pytest.mark.parametrize(("config", "golden"), SCENARIOS, ids=[g for _, g in SCENARIOS])
def test_the_rendered_policy_is_library_gos_golden_file(config: dict[str, Any], golden: str) -> None:
    expected = openshift.go_policy(yaml.safe_load((GOLDEN / golden).read_text("utf-8")))
    assert openshift.render(config, packaged_openshift_manifests()) == expected


@pytest.mark.parametrize(("config", "message"), ERRORS, ids=["profile", "custom-rule-profile"])
def test_an_unknown_profile_is_refused_as_library_go_refuses_it(config: dict[str, Any], message: str) -> None:
    with pytest.raises(openshift.RenderError, match=re.escape(message)):
        openshift.render(config, packaged_openshift_manifests())


def test_the_misspelt_resource_field_of_the_manifests_names_the_whole_group() -> None:
    """WriteRequestBodies spells ``resource:`` for machineconfiguration.openshift.io: Go drops the field."""
    rules = packaged_openshift_manifests().rules["WriteRequestBodies"]
    entries = [gr for r in rules for gr in r.get("resources", ())]
    assert {"group": "machineconfiguration.openshift.io"} in entries


def apiserver(spec: Any = None, **audit: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": "config.openshift.io/v1", "kind": "APIServer", "metadata": {"name": "cluster"}}
    obj["spec"] = spec if spec is not None else {"audit": audit}
    return obj


def verdict(obj: dict[str, Any], profile: str = "baseline") -> Any:
    return judge(obj, None, operation="CREATE", mode="enforce", context=build_context(profile=profile),
                 source="APIServer cluster")  # fmt: skip


def codes(findings: Any) -> list[str]:
    return [f.code for f in findings]


def test_profile_none_is_a_violation_that_says_what_to_set() -> None:
    v = verdict(apiserver(profile="None"))
    assert not v.allowed
    assert codes(v.violations) == ["audit-profile-none", "categories-below-minimum"]
    assert all("Fix: set spec.audit.profile: Default" in f.message for f in v.violations)
    (result,) = v.results
    assert result.kind == "openshift-apiserver" and result.covered_count == 0


@pytest.mark.parametrize("spec", [{}, {"audit": {}}, {"audit": None}, {"audit": {"profile": None, "customRules": None}},
                                  {"audit": {"profile": "Default"}}], ids=["spec", "audit", "null", "nulls", "set"])
def test_the_default_profile_covers_every_category_at_metadata(spec: dict[str, Any]) -> None:
    """The CRD's defaults: spec.audit {profile: Default}, profile Default."""
    v = verdict(apiserver(spec))
    assert v.allowed and not v.violations
    (result,) = v.results
    assert result.covered_count == 6 and {c.level for c in result.categories or ()} == {"Metadata"}
    assert set(v.categories) == {c.id for c in result.categories or ()}
    assert result.summary.startswith("OpenShift spec.audit.profile Default: the audit policy the operators render")


def test_a_custom_rule_with_profile_none_for_everyone_names_that_rule_as_the_fix() -> None:
    v = verdict(apiserver(profile="Default", customRules=[{"group": "system:authenticated", "profile": "None"}]))
    assert codes(v.violations) == ["categories-below-minimum"]
    message = v.violations[0].message
    assert "spec.audit.customRules[group=system:authenticated] (profile None)" in message
    assert "Fix: set spec.audit.customRules[group=system:authenticated].profile: Default" in message
    assert "audit-profile-none" in codes(v.warnings)


def test_a_custom_rule_for_a_small_group_is_a_warning_only() -> None:
    v = verdict(apiserver(profile="Default", customRules=[{"group": "ci-bots", "profile": "None"}]))
    assert v.allowed
    assert codes(v.warnings) == ["audit-profile-none"] and "group ci-bots" in v.warnings[0].message


def test_what_no_spec_audit_setting_can_reach_is_said_plainly() -> None:
    """strict wants RequestReceived, which the operators' base policy omits for every profile."""
    v = verdict(apiserver(profile="AllRequestBodies"), profile="strict")
    assert codes(v.violations) == ["stage-omitted"]
    assert "No spec.audit setting meets this" in v.violations[0].message


def test_a_stronger_profile_is_named_when_only_it_meets_the_profile() -> None:
    """stig needs RequestResponse: no OpenShift profile logs secrets so, so none meets it either."""
    v = verdict(apiserver(profile="Default"), profile="stig")
    assert "No spec.audit setting meets this" in v.violations[0].message


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ({"audit": {"profile": "Bogus"}}, 'spec.audit.profile: Unsupported value: "Bogus"'),
        ({"audit": {"customRules": [{"group": "g"}]}}, "spec.audit.customRules[0].profile: Required value"),
        ({"audit": {"customRules": [{"group": "", "profile": "None"}]}}, "should be at least 1 chars long"),
        ({"audit": {"customRules": [{"group": "g", "profile": "None"}, {"group": "g", "profile": "Default"}]}},
         "spec.audit.customRules[1]: Duplicate value"),
        ({"audit": "Default"}, "spec.audit in body must be of type object"),
    ],
    ids=["profile", "custom-profile", "empty-group", "duplicate", "type"],
)  # fmt: skip
def test_an_object_the_crd_refuses_is_invalid(spec: dict[str, Any], needle: str) -> None:
    v = verdict(apiserver(spec))
    assert codes(v.violations) == ["openshift-audit-invalid"]
    assert needle in v.violations[0].message and not v.results[0].valid


def test_an_object_without_spec_is_refused_as_the_crd_requires_it() -> None:
    obj = apiserver()
    del obj["spec"]
    assert "spec: Required value" in verdict(obj).violations[0].message


def test_without_the_manifests_the_coverage_is_not_judged_and_says_so() -> None:
    from dataclasses import replace

    ctx = replace(build_context(), openshift_manifests=None)
    v = judge(apiserver(profile="None"), None, operation="CREATE", mode="enforce", context=ctx)
    assert codes(v.violations) == ["audit-profile-none"] and codes(v.warnings) == ["policy-content-unseen"]
    assert v.results[0].categories is None


def test_check_on_a_file_reports_the_rendered_policy(tmp_path: Path) -> None:
    f = tmp_path / "apiserver.yaml"
    f.write_text(yaml.safe_dump(apiserver(profile="WriteRequestBodies")))
    out = CliRunner().invoke(main, ["check", "--format", "json", str(f)])
    assert out.exit_code == 0, out.output
    (result,) = json.loads(out.output)["results"]
    assert result["kind"] == "openshift-apiserver" and result["coveredCount"] == 6
    assert result["categories"]["rbac-changes"]["level"] == "RequestResponse"  # writes: bodies logged
    assert result["categories"]["api-calls"]["level"] == "Metadata"  # its list of pods is a read
