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


def test_the_block_pages_show_the_figures_their_script_makes(tmp_path):
    import subprocess
    import sys

    pages = sorted((ROOT / "docs" / "blocks").glob("*.md"))
    assert len(pages) >= 5
    shown = set()
    for page in pages:
        images = re.findall(r"!\[[^\]]*\]\(([\w.]+\.png)\)", page.read_text())
        assert images, f"{page.name} shows no figure"
        shown.update(images)
    script = ROOT / "docs" / "blocks" / "figures.py"
    subprocess.run([sys.executable, str(script), "--out", str(tmp_path)], check=True)
    made = {path.name for path in tmp_path.glob("*.png")}
    assert shown == made
    assert made == {path.name for path in (ROOT / "docs" / "blocks").glob("*.png")}
