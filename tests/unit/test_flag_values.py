"""Values of kube-apiserver's custom flag types are judged as their ``Set`` methods judge them.

Each case is a port of an upstream ``Set`` (cited in ``webhook/core/goflags.py``) and was checked
against kube-apiserver's own FlagSet by the flag oracle (tests/e2e/test_flag_differential.py
generates thousands more): the pflag error after ``flag: `` is Go's text.
"""

from __future__ import annotations

import pytest

from webhook.core import goflags, pflag

QUANTITY_FORMAT = "quantities must match the regular expression"


def refusal(flag: str, value: str) -> str | None:
    """What kube-apiserver v1.37 says about ``--flag=value`` (None: it takes it)."""
    parsed = pflag.parse([f"--{flag}={value}"])
    assert parsed.unknown == []
    return parsed.errors[0] if parsed.errors else None


@pytest.mark.parametrize(
    ("flag", "value", "error"),
    [
        # component-base cli/flag/map_string_string.go (NoSplit for --oidc-required-claim)
        ("oidc-required-claim", "a=b,c", None),
        ("oidc-required-claim", "a", "malformed pair, expect string=string"),
        # cli/flag/configuration_map.go: --runtime-config takes anything
        ("runtime-config", "api/all,x", None),
        # cli/flag/colon_separated_multimap_string_string.go, AllowDefaultEmptyKey for --feature-gates
        ("feature-gates", "kube:A=true,B=false", None),
        # cli/flag/namedcertkey_flag.go
        ("tls-sni-cert-key", "c.crt,c.key:a.com,b.com", None),
        ("tls-sni-cert-key", "c.crt,c.key:", "empty names list is not allowed"),
        ("tls-sni-cert-key", "c.crt", "expected comma separated certificate and key file paths"),
        # apimachinery util/net/port_range.go
        ("service-node-port-range", "30000-32767", None),
        ("service-node-port-range", "30000+100", None),
        ("service-node-port-range", "5-3", "end port cannot be less than start port: 5-3"),
        ("service-node-port-range", "1-70000", "the port range cannot be greater than 65535: 1-70000"),
        ("service-node-port-range", "1+-2", "unable to parse port range: 1+-2"),
        ("service-node-port-range", "0x10", 'strconv.Atoi: parsing "0x10": invalid syntax'),
        ("service-node-port-range", "1+9223372036854775807", "end port cannot be less than start port"),
        # apimachinery api/resource/quantity.go ParseQuantity
        ("log-text-info-buffer-size", "1Ki", None),
        ("log-text-info-buffer-size", ".", None),
        ("log-text-info-buffer-size", "Ti", None),
        ("log-text-info-buffer-size", "Ei", "unable to parse numeric part of quantity"),
        ("log-text-info-buffer-size", "e-10", "unable to parse numeric part of quantity"),
        ("log-text-info-buffer-size", "1kK", "unable to parse quantity's suffix"),
        ("log-text-info-buffer-size", "1.5.5", QUANTITY_FORMAT),
        ("log-text-info-buffer-size", "1e4294967296", None),
        # logs/api/v1/pflags.go vmodule
        ("vmodule", "a=1,b*=2,", None),
        ("vmodule", "a", '"a" does not have the pattern=N format'),
        ("vmodule", "a=2147483648", 'parsing verbosity in "a=2147483648": strconv.ParseUint: parsing "2147483648": '
                                    "value out of range"),
        # logs/api/v1/pflags.go verbosityLevelPflag: ParseUint(value, 10, 31)
        ("v", "2147483648", 'strconv.ParseUint: parsing "2147483648": value out of range'),
        # version/verflag/verflag.go + version/dynamic.go (the oracle's version stamp is v1.37.2)
        ("version", "v1.37.2-custom.1", None),
        ("version", "v1.36.0", 'version "v1.36.0" must match major/minor/patch of default version "v1.37.2"'),
        ("version", "v1.37", 'illegal version string "v1.37"'),
        ("version", "yes", 'strconv.ParseBool: parsing "yes": invalid syntax'),
    ],
)  # fmt: skip
def test_custom_flag_values_are_set_as_upstream_sets_them(flag: str, value: str, error: str | None) -> None:
    found = refusal(flag, value)
    if error is None:
        assert found is None
    else:
        assert found is not None and found.startswith(f'invalid argument "{value}" for "')
        assert error in found


@pytest.mark.parametrize(("value", "exits"), [("true", True), ("raw", True), ("false", False), ("v1.37.2", False)])
def test_only_a_true_or_raw_version_flag_stops_the_server(value: str, exits: bool) -> None:
    parsed = pflag.parse([f"--version={value}"])
    assert any("prints its version and exits" in e for e in parsed.errors) == exits


def test_a_semantic_version_is_parsed_as_apimachinery_parses_it() -> None:
    assert goflags.parse_semantic("v1.37.2-rc.1+build.5") == (1, 37, 2)
    with pytest.raises(ValueError, match="illegal zero-prefixed version component"):
        goflags.parse_semantic("v1.037.2")
    with pytest.raises(ValueError, match="could not parse pre-release/metadata"):
        goflags.parse_semantic("v1.37.2-")


def test_a_version_flag_is_not_judged_against_another_releases_table() -> None:
    """A 1.30 target is judged with the oldest table; its binary's version is not that table's."""
    assert goflags.table_version((1, 30)) != (1, 30)
    assert not pflag.parse(["--version=v1.30.5"], (1, 30)).errors
    assert pflag.parse(["--version=v1.30.5"], (1, 37)).errors
