"""Differential test: shell-wrapped commands are expanded as mvdan.cc/sh expands them.

Hypothesis builds ``sh -c`` scripts from the pieces real manifests use — a command before
kube-apiserver (``;``, ``&&``), ``exec``, paths, flags written plain, single- and double-quoted,
with backslash escapes and backslash-newline continuations, ``$VAR``/``${VAR}``/``${VAR:-x}``
from the container env, ``"$@"``/``$@``/``$1``/``"$*"`` from the arguments, and redirections,
``|``, ``||``, ``; echo`` after it — and the Go oracle (tests/oracle/shell.go, mvdan.cc/sh/v3's
parser and expander, no command run) expands them.  auditwarden (``shellcmd.script_argv``) must
give the same kube-apiserver argv whenever it reports nothing undetermined, and must report
something undetermined whenever the oracle cannot expand without running a command.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from webhook.core.shellcmd import script_argv

CASES = int(os.environ.get("AUDITWARDEN_SHELL_DIFF_CASES", "2000"))
BATCH = 50
ENV = {"LOG": "/var/log/kubernetes/audit/audit.log", "AGE": "30", "SP": "a  b", "EMPTY": "", "Q": "it's \"q\""}

PREFIX = ["", "set -e; ", "mkdir -p /var/log/kubernetes && ", "echo start;", "cd / ;\n", "X=1 "]
LAUNCH = ["exec kube-apiserver", "kube-apiserver", "/usr/local/bin/kube-apiserver", "exec /bin/kube-apiserver"]
WORDS = [
    "--audit-log-path=/var/log/a.log", "--audit-log-maxage=30", "'--audit-log-format=json'", '"--a=b c"',
    "--audit-log-path=$LOG", "--audit-log-path=${LOG}", '"--audit-log-maxage=$AGE"', "--x=${EMPTY:-d}",
    "--x=${UNSET:-dflt}", "--x=${UNSET-d}", "--x=${EMPTY-d}", "$SP", '"$SP"', '"$@"', "$@", "$1", '"$*"', "$#",
    "--x=a\\ b", "--x=\\$LOG", "\\\n  --y=1", '"--q=$Q"', "'$LOG'", '--x="a"b\'c\'', "--z=${AGE}0", "--",
]  # fmt: skip
SUFFIX = ["", " 2>&1", " >>/var/log/apiserver.log", "; echo done", " && echo ok", " || exit 1", " | tee /x", ";echo x",
          " </dev/null", "\n# a comment"]  # fmt: skip
UNKNOWN = ["--p=$(cat /etc/p)", "--p=`date`", "--n=$((1+2))"]
ARGS = [["sh"], ["sh", "--audit-log-maxsize=100"], ["kube-apiserver", "--a=1", "x y"], [], ["--", "--b=2"]]

SCRIPT = st.tuples(
    st.sampled_from(PREFIX), st.sampled_from(LAUNCH),
    st.lists(st.sampled_from(WORDS + UNKNOWN * (1 if CASES else 0)), max_size=6),
    st.sampled_from(SUFFIX), st.sampled_from(ARGS),
).map(lambda t: (f"{t[0]}{t[1]} {' '.join(t[2])}{t[3]}", t[4]))  # fmt: skip


@pytest.fixture(scope="module")
def oracle() -> Iterator[Any]:
    from tests.support.oracle import Oracle

    with Oracle() as o:
        yield o


COUNTER = {"scripts": 0, "compared": 0, "undetermined": 0}


@settings(max_examples=max(1, CASES // BATCH), deadline=None, suppress_health_check=list(HealthCheck),
          derandomize=True, phases=[Phase.explicit, Phase.reuse, Phase.generate])  # fmt: skip
@given(cases=st.lists(SCRIPT, min_size=BATCH, max_size=BATCH))
def test_auditwarden_expands_shell_commands_as_mvdan_sh_does(oracle: Any, cases: list[tuple[str, list[str]]]) -> None:
    answers = oracle.ask_many([{"shell": {"script": s, "env": ENV, "args": a}} for s, a in cases])
    for (script, args), upstream in zip(cases, answers, strict=True):
        COUNTER["scripts"] += 1
        ours = script_argv(script, ENV, args)
        if upstream["error"]:
            assert ours.unresolved, f"mvdan/sh cannot expand {script!r} ({upstream['error']}); ours said nothing"
            COUNTER["undetermined"] += 1
            continue
        if ours.unresolved:
            COUNTER["undetermined"] += 1
            continue
        COUNTER["compared"] += 1
        assert (ours.argv is not None) == upstream["found"], f"found differs for {script!r}"
        if ours.argv is not None:
            assert ours.argv == upstream["argv"], f"argv differs for {script!r} with args {args}"


def test_enough_shell_scripts_were_compared() -> None:
    """Runs after the property test in file order: proves the differential run was not vacuous."""
    assert COUNTER["scripts"] >= min(CASES, 2000)
    assert COUNTER["compared"] >= COUNTER["scripts"] // 3
    print(f"shell differential: {COUNTER}")
