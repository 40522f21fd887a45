"""The README's zoo table is the zoo: every shipped spec, with its parameter count."""
from __future__ import annotations

import re

import archdsl
from conftest import ROOT


def test_readme_lists_every_shipped_model_with_its_parameters():
    rows = {}
    for line in (ROOT / "README.md").read_text().splitlines():
        m = re.match(r"\|[^|]*\| `(\w+)` \| [^|]* \| ([\d,]+) \|", line)
        if m:
            rows[m.group(1)] = int(m.group(2).replace(",", ""))
    shipped = {m.name: m.params for m in archdsl.list_models()}
    assert rows == shipped
