"""YAML is read as kube-apiserver reads it (go-yaml v2 via sigs.k8s.io/yaml, then JSON).

Every case of issue 11's "Why" §1 is pinned here with the verdict kube-apiserver v1.37.2's own
loader gives (``k8s.io/apiserver`` ``LoadPolicyFromBytes``, checked with the Go oracle in
tests/oracle; tests/oracle/test_yaml_differential.py compares thousands more).
"""

from __future__ import annotations

import pytest

from webhook.core import goyaml
from webhook.core.documents import discover, late_policy
from webhook.core.policy import PolicyError, load_policy
from webhook.core.yamlsafe import DocumentError, load_all, load_first, load_one

HEAD = "apiVersion: audit.k8s.io/v1\nkind: Policy\n"


def policy_with(field: str, scalar: str) -> str:
    if field == "resourceNames":
        return HEAD + f"rules:\n- level: Metadata\n  resources: [{{resources: [pods], resourceNames: [{scalar}]}}]\n"
    return HEAD + f"rules:\n- level: Metadata\n  {field}: [{scalar}]\n"


# ------------------------------------------------------------- scalars upstream reads as non-strings

NOT_STRINGS = ["y", "n", "Y", "N", "1e3", "1E5", "+1e5", "+.5", "1.0e3", "0o17", "08"]


@pytest.mark.parametrize("field", ["namespaces", "users", "resourceNames"])
@pytest.mark.parametrize("scalar", NOT_STRINGS)
def test_a_plain_scalar_go_yaml_reads_as_a_bool_or_number_is_refused_where_a_string_is_due(
    field: str, scalar: str
) -> None:
    with pytest.raises(PolicyError, match=f"cannot unmarshal (bool|number) into Go struct field .*{field} of type"):
        load_policy(policy_with(field, scalar))


def test_the_refusal_quotes_kube_apiserver() -> None:
    with pytest.raises(PolicyError) as err:
        load_policy(policy_with("namespaces", "y"))
    assert (
        "failed decoding: json: cannot unmarshal bool into Go struct field PolicyRule.rules.namespaces of type string"
        in str(err.value)
    )


# ----------------------------------------------------------------- scalars upstream reads as strings

STRINGS = ["1:20", "190:20:30", "=", "!!binary eQ=="]


@pytest.mark.parametrize("field", ["namespaces", "users", "resourceNames"])
@pytest.mark.parametrize("scalar", STRINGS)
def test_sexagesimal_looking_equals_sign_and_binary_scalars_load_as_strings(field: str, scalar: str) -> None:
    load_policy(policy_with(field, scalar))


def test_sexagesimal_equals_and_binary_values_are_the_strings_go_yaml_gives() -> None:
    assert load_one("a: [1:20, 190:20:30, =, !!binary eQ==, 2001-12-14, <<]\n") == {
        "a": ["1:20", "190:20:30", "=", "y", "2001-12-14", "<<"]
    }


def test_omit_managed_fields_y_is_true() -> None:
    policy = load_policy(HEAD + "omitManagedFields: y\nrules:\n- level: Metadata\n")
    assert policy.omit_managed_fields is True


@pytest.mark.parametrize(
    ("scalar", "value"),
    [("y", True), ("No", False), ("OFF", False), ("on", True), ("0x1F", 31), ("0o17", 15), ("017", 15),
     ("0b101", 5), ("1_000", 1000), ("+5", 5), ("08", 8.0), ("1e3", 1000.0), (".5", 0.5), ("~", None),
     ("null", None), ("", None), ("yes!", "yes!"), ("0x", "0x"), ("1:20", "1:20"), ("._5", "._5")],
)  # fmt: skip
def test_plain_scalars_resolve_as_go_yaml_resolve_go_does(scalar: str, value: object) -> None:
    assert goyaml.resolve("", scalar)[1] == value
    assert load_one(f"k: {scalar}\n") == {"k": value}


def test_an_explicit_tag_that_does_not_fit_is_an_error_as_in_go_yaml() -> None:
    with pytest.raises(DocumentError, match=r"cannot decode !!str `abc` as a !!int"):
        load_all("a: !!int abc\n")


def test_keys_become_json_strings_as_sigs_k8s_io_yaml_makes_them() -> None:
    assert load_one("1: a\ny: b\n1.5: c\n") == {"1": "a", "true": "b", "1.5": "c"}


def test_a_null_key_is_refused_as_sigs_k8s_io_yaml_refuses_it() -> None:
    with pytest.raises(DocumentError, match="unsupported map key"):
        load_all("~: 1\n")


def test_a_nan_value_cannot_become_json() -> None:
    with pytest.raises(DocumentError, match="unsupported value: NaN"):
        load_all("a: .nan\n")


def test_merge_keys_merge_in_key_order_as_go_yaml_v2_does() -> None:
    assert load_one("a: 1\n<<: {a: 2, b: 3}\n") == {"a": 2, "b": 3}
    assert load_one("<<: {a: 2}\na: 1\n") == {"a": 1}
    assert load_one("<<: [{a: 1}, {a: 2, b: 2}]\n") == {"a": 1, "b": 2}


def test_a_merge_of_a_scalar_is_refused() -> None:
    with pytest.raises(DocumentError, match="map merge requires map"):
        load_all("<<: 1\n")


# -------------------------------------------------------------------------------- how files are read


def test_a_policy_file_in_flow_yaml_starting_with_a_brace_is_read_as_json_and_refused() -> None:
    with pytest.raises(PolicyError, match="couldn't get version/kind; json parse error"):
        load_policy("{apiVersion: audit.k8s.io/v1, kind: Policy, rules: [{level: Metadata}]}\n")


def test_a_json_policy_file_loads() -> None:
    load_policy('{"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": [{"level": "Metadata"}]}')


def test_only_the_first_document_of_a_policy_file_is_read() -> None:
    with pytest.raises(PolicyError, match="unknown group version field"):
        load_policy("---\n---\n" + HEAD + "rules:\n- level: Metadata\n")
    assert load_first("a: 1\n---\nb: 2\n") == {"a": 1}


def test_a_policy_after_an_empty_first_document_is_reported_with_upstreams_reason() -> None:
    reason = late_policy(load_all("---\n---\n" + HEAD + "rules:\n- level: Metadata\n"))
    assert reason is not None and "unknown group version field" in reason
    assert late_policy(load_all(HEAD + "rules:\n- level: Metadata\n")) is None


@pytest.mark.parametrize(
    ("metadata", "reason"),
    [("creationTimestamp: notatime", 'parsing time "notatime"'),
     ("creationTimestamp: 2024-01-01", 'parsing time "2024-01-01"'),
     ("ownerReferences: [{uid: 1}]", "cannot unmarshal number"),
     ("generation: 1.5", "cannot unmarshal number 1.5"),
     ("labels: {a: 1}", "cannot unmarshal number")],
)  # fmt: skip
def test_typed_object_meta_fields_of_the_wrong_type_are_refused(metadata: str, reason: str) -> None:
    with pytest.raises(PolicyError, match=reason):
        load_policy(HEAD + f"metadata:\n  {metadata}\nrules:\n- level: Metadata\n")


@pytest.mark.parametrize(
    "metadata", ["creationTimestamp: 2024-01-01T00:00:00Z", "generation: 1e3", "ownerReferences: [{uid: x}]"]
)
def test_typed_object_meta_fields_of_the_right_type_load(metadata: str) -> None:
    load_policy(HEAD + f"metadata:\n  {metadata}\nrules:\n- level: Metadata\n")


def test_a_core_group_policy_is_judged_as_an_audit_policy_and_refused() -> None:
    text = "apiVersion: v1\nkind: Policy\nrules:\n- level: Metadata\n"
    with pytest.raises(PolicyError, match='no kind "Policy" is registered for version "v1"'):
        load_policy(text)
    assert [d.kind for d in discover(load_one(text)).documents] == ["audit-policy"]


def test_a_configmap_policy_after_an_empty_first_document_is_a_violation() -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "audit", "namespace": "kube-system"},
          "data": {"policy.yaml": "---\n---\n" + HEAD + "rules:\n- level: Metadata\n"}}  # fmt: skip
    found = discover(cm)
    assert [v.code for v in found.violations] == ["policy-not-first-document"]


def test_a_configmap_policy_in_flow_yaml_starting_with_a_brace_cannot_be_analysed() -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "audit", "namespace": "kube-system"},
          "data": {"p.yaml": "{apiVersion: audit.k8s.io/v1, kind: Policy, rules: [{level: Metadata}]}"}}  # fmt: skip
    found = discover(cm)
    assert [v.code for v in found.violations] == ["content-unparseable"]
    assert "json parse error" in found.violations[0].message
