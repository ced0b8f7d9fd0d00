"""nas/README.md, the newcomer's map, names every module of the package, and each module's
docstring opens with a line saying its job."""

from __future__ import annotations

import ast
from pathlib import Path

NAS = Path(__file__).resolve().parents[1] / "nas"


def test_every_module_is_on_the_map_and_says_its_job():
    text = (NAS / "README.md").read_text()
    for path in sorted(NAS.rglob("*.py")):
        relative = path.relative_to(NAS).as_posix()
        if path.name == "__init__.py":
            if path.parent != NAS and path.read_text().strip():
                assert f"`{path.parent.name}/" in text, relative  # the package, by its folder
            continue
        docstring = ast.get_docstring(ast.parse(path.read_text()))
        assert docstring and docstring.splitlines()[0].strip(), f"{relative}: no docstring"
        assert f"`{relative}`" in text, f"{relative} is not in nas/README.md"
