"""The README's examples are tests: its doctest blocks run here, its example suite and core snippet in e2e."""

from __future__ import annotations

import doctest
from pathlib import Path

README = Path(__file__).parents[2] / "README.md"


def test_readme_doctests() -> None:
    result = doctest.testfile(str(README), module_relative=False, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 4
    assert result.failed == 0


def readme_block(after_heading: str) -> str:
    text = README.read_text()
    section = text.split(after_heading, 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_core_snippet_is_valid_python() -> None:
    compile(readme_block("## Using the core without pytest"), "README.md", "exec")
