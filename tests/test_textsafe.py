"""CSV cells and terminal text built from user input cannot run formulas or move the cursor."""

from moodlens.textsafe import csv_cell, csv_row, terminal_text


def test_formula_cells_are_neutralised_and_data_is_not():
    for bad in ("=HYPERLINK(\"http://evil\")", "+1+1", "-2+3", "@SUM(A1)", "\t=1"):
        assert csv_cell(bad).startswith("'")
    assert csv_cell("gala 2025") == "gala 2025"
    assert csv_cell(-0.25) == -0.25 and csv_cell(3) == 3 and csv_cell(None) is None
    assert csv_row({"event": "=1+1", "people": 7}) == {"event": "'=1+1", "people": 7}


def test_control_characters_are_escaped_for_terminals():
    assert terminal_text("gala\x1b[2J\x07") == "gala\\x1b[2J\\x07"
    assert terminal_text("line\nbreak") == "line\\nbreak"
    assert terminal_text("Café 🎉") == "Café 🎉"
