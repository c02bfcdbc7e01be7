import re
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_every_row_of_the_reliability_table_names_a_test_that_exists():
    table = (ROOT / "docs" / "reliability.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    named = re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", table)
    assert len(rows) - 1 >= 80 and len(named) >= 40  # The header row is not a case.
    for path, name in named:
        assert f"def {name}(" in (ROOT / path).read_text(), f"{path}::{name}"
    for row in rows[1:]:
        assert row.rstrip().endswith("` |") or row.rstrip().endswith("| same |"), row
