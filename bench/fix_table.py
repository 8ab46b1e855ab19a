"""The corpus table of `auditwarden fix` (issue 12): for every loadable corpus policy and each profile,
whether it passes, and what the repair adds (rules inserted, omitStages entries removed).

Usage: ``python bench/fix_table.py`` (prints a Markdown table; bench/README.md holds its output).
Every repair shown is checked by tests/unit/test_repair.py and tests/oracle/test_repair_oracle.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.repairs import corpus_policies  # noqa: E402
from webhook.context import packaged_catalog  # noqa: E402
from webhook.core.repair import repair  # noqa: E402

PROFILES = ("baseline", "strict", "stig")


def cell(rep: object) -> str:
    from webhook.core.repair import Repair

    assert isinstance(rep, Repair)
    if not rep.needed:
        return "passes"
    if not rep.possible:
        return "no repair: " + rep.blocked[0][:60]
    parts = [f"+{len(rep.insertions)} rule{'s' if len(rep.insertions) != 1 else ''}"] if rep.insertions else []
    if rep.stage_changes:
        parts.append(f"{len(rep.stage_changes)} omitStages edit{'s' if len(rep.stage_changes) != 1 else ''}")
    return ", ".join(parts)


def main() -> None:
    catalog = packaged_catalog()
    rows = []
    totals = {p: [0, 0, 0] for p in PROFILES}  # failing, repaired, rules added
    for name, policy in corpus_policies():
        cells = []
        for profile in PROFILES:
            rep = repair(policy, catalog, catalog.profiles[profile])
            cells.append(cell(rep))
            if rep.needed:
                totals[profile][0] += 1
                totals[profile][1] += rep.possible
                totals[profile][2] += len(rep.insertions)
        short = name.split(":")[0] + ("" if name.endswith((":policy", ":0:policy")) else f" ({name.split(':', 2)[2]})")
        rows.append(f"| `{short}` | " + " | ".join(cells) + " |")
    print("| corpus policy | baseline | strict | stig |")
    print("| --- | --- | --- | --- |")
    print("\n".join(rows))
    print(
        "| **failing → repaired (rules added)** | "
        + " | ".join(f"{t[0]} → {t[1]} ({t[2]})" for t in totals.values())
        + " |"
    )


if __name__ == "__main__":
    main()
