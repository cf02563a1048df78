#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Checks that the #include <etrm/...> lines of include/etrm/ follow the folder table of
docs/design.md (section "Layering"): a header in folder F may include headers of F itself, of
the folders in F's "may include" cell, and of whatever those may include (the closure). A row
may also list exceptions as `file -> folder` in its "exceptions" cell (code spans without an
arrow there are part of the reason).

Usage: check_layering.py [REPO_ROOT]. Exit 0 when every arrow points down; 1 with one line per
upward arrow (file, line, included header); 2 when the table cannot be read.
check_layering.py --self-test runs the check on a small made-up tree with one allowed arrow, one
excepted arrow and one upward arrow, and fails unless exactly the upward one is reported."""
import pathlib
import re
import sys

TABLE_HEADING = "## Layering"
INCLUDE = re.compile(r'^\s*#\s*include\s*<etrm/([^>]+)>')
CODE = re.compile(r'`([^`]+)`')


def fail(message):
    print(f"check_layering: {message}", file=sys.stderr)
    sys.exit(2)


def read_table(design):
    """Rows of the first table after TABLE_HEADING: {folder: (may_include, exceptions)}."""
    lines = design.read_text(encoding="utf-8").splitlines()
    try:
        start = lines.index(TABLE_HEADING)
    except ValueError:
        fail(f"{design}: no '{TABLE_HEADING}' heading")
    rows, header = {}, None
    for line in lines[start + 1:]:
        if not line.startswith("|"):
            if header is not None:
                break
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            header = [c.lower() for c in cells]
            for name in ("folder", "may include", "exceptions"):
                if name not in header:
                    fail(f"{design}: the layering table has no '{name}' column")
            continue
        if set(cells[0]) <= set("-: "):
            continue
        folder = CODE.findall(cells[header.index("folder")])
        if len(folder) != 1:
            fail(f"{design}: a layering row names no folder in backticks: {line}")
        may = [f.rstrip("/") for f in CODE.findall(cells[header.index("may include")])]
        exceptions = set()
        for text in CODE.findall(cells[header.index("exceptions")]):
            if "->" not in text:
                continue  # a name in the reason, not an exception
            parts = [p.strip() for p in text.split("->")]
            if len(parts) != 2 or not parts[0] or not parts[1]:
                fail(f"{design}: an exception must read `file -> folder`: {text}")
            exceptions.add((parts[0], parts[1].rstrip("/")))
        rows[folder[0].rstrip("/")] = (may, exceptions)
    if not rows:
        fail(f"{design}: the layering table is empty")
    for folder, (may, _) in rows.items():
        for target in may:
            if target not in rows:
                fail(f"{design}: row `{folder}` may include `{target}`, which has no row")
    return rows


def closure(rows):
    allowed = {}
    for folder in rows:
        seen, todo = {folder}, list(rows[folder][0])
        while todo:
            target = todo.pop()
            if target not in seen:
                seen.add(target)
                todo.extend(rows[target][0])
        allowed[folder] = seen
    return allowed


def folder_of(relative, rows):
    """The longest table folder that holds the path (relative to include/etrm/), or None."""
    best = None
    for folder in rows:
        if (relative == folder or relative.startswith(folder + "/")) and (best is None or len(folder) > len(best)):
            best = folder
    return best


def upward_arrows(root):
    """(messages for upward arrows, messages for headers or includes outside the table)."""
    include_root = root / "include" / "etrm"
    rows = read_table(root / "docs" / "design.md")
    allowed = closure(rows)
    upward, unplaced = [], []
    for header in sorted(include_root.rglob("*")):
        if not header.is_file() or header.suffix not in (".hpp", ".cuh", ".h"):
            continue
        relative = header.relative_to(include_root).as_posix()
        source = folder_of(relative, rows)
        if source is None:
            unplaced.append(relative)
            continue
        for number, line in enumerate(header.read_text(encoding="utf-8").splitlines(), 1):
            match = INCLUDE.match(line)
            if not match:
                continue
            target = folder_of(match.group(1), rows)
            if target is None:
                unplaced.append(f"{relative}:{number}: includes etrm/{match.group(1)}, in no folder of the table")
            elif target not in allowed[source] and (relative, target) not in rows[source][1]:
                upward.append(f"{relative}:{number}: `{source}` includes etrm/{match.group(1)} (`{target}`), "
                              f"against the layering table of docs/design.md")
    unplaced = [m if ":" in m else f"include/etrm/{m} lies in no folder of the layering table" for m in unplaced]
    return upward, unplaced, len(rows)


def self_test():
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp)
        (root / "docs").mkdir()
        (root / "docs" / "design.md").write_text(
            "## Layering\n\n| folder | may include | exceptions |\n|---|---|---|\n"
            "| `core` | – | |\n| `layers` | `core` | `layers/odd.hpp -> model`: because `odd` |\n"
            "| `model` | `layers` | |\n", encoding="utf-8")
        for name, text in {"core/a.hpp": "", "layers/b.hpp": "#include <etrm/core/a.hpp>\n",
                           "layers/odd.hpp": "#include <etrm/model/c.hpp>\n",
                           "model/c.hpp": "#include <etrm/core/a.hpp>\n#include <etrm/layers/b.hpp>\n",
                           "core/up.hpp": "#include <etrm/model/c.hpp>\n"}.items():
            path = root / "include" / "etrm" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        upward, unplaced, _ = upward_arrows(root)
    if len(upward) == 1 and upward[0].startswith("core/up.hpp:1:") and not unplaced:
        print("check_layering: self-test passed (the one upward arrow of the made-up tree is reported)")
        return 0
    print(f"check_layering: self-test FAILED: upward {upward}, unplaced {unplaced}")
    return 1


def main():
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parent.parent)
    upward, unplaced, folders = upward_arrows(root)
    for message in unplaced + upward:
        print(f"check_layering: {message}")
    if upward or unplaced:
        return 1
    print(f"check_layering: {folders} folders, every #include <etrm/...> points down the table")
    return 0


if __name__ == "__main__":
    sys.exit(main())
