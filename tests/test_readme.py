"""README.md's code runs as written.

- Every ```python block runs, in a fresh namespace, as README.md's lines (a traceback names them).
- A block followed by a `<!-- prints -->` line and a ``` block prints exactly that block.
- What a block prints is the same on a second run: random data and checks are seeded.
- The functional API's signatures, shown as text after `<!-- signatures -->`, are the functions'.
"""
import contextlib
import inspect
import io
import re
import traceback
from pathlib import Path

import pytest

import cyconv

README = Path(__file__).resolve().parents[1] / "README.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.S | re.M)


def fenced_blocks(text):
    """[(line of the opening fence, language, body, the text between it and the previous block)]"""
    blocks, end = [], 0
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        blocks.append((line, match.group(1), match.group(2), text[end:match.start()]))
        end = match.end()
    return blocks


def python_blocks(text):
    """[(line, code, what it prints or None)] of every ```python block."""
    blocks = fenced_blocks(text)
    found = []
    for i, (line, language, body, _) in enumerate(blocks):
        if language != "python":
            continue
        after = blocks[i + 1] if i + 1 < len(blocks) else None
        prints = after[2] if after and after[3].strip() == "<!-- prints -->" else None
        found.append((line, body, prints))
    return found


BLOCKS = python_blocks(README.read_text())


def run_block(line, code):
    """stdout of `code`, run in a fresh namespace as README.md's lines from `line` + 1 on."""
    compiled = compile("\n" * line + code, str(README), "exec")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compiled, {"__name__": "__readme__"})
    return out.getvalue()


def test_the_readme_has_python_blocks():
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("line, code, prints", BLOCKS, ids=[f"README.md:{b[0]}" for b in BLOCKS])
def test_python_block_runs_and_prints_what_the_readme_shows(line, code, prints, restore_settings):
    try:
        first = run_block(line, code)
    except Exception as error:
        where = [frame.lineno for frame in traceback.extract_tb(error.__traceback__)
                 if frame.filename == str(README)] or [getattr(error, "lineno", line)]
        pytest.fail(f"the ```python block at README.md line {line} raised {type(error).__name__} "
                    f"at README.md line {where[-1]}: {error}")
    if prints is not None:
        assert first == prints, (f"the block at README.md line {line} printed\n{first}\n"
                                 f"but README.md shows\n{prints}")
    assert run_block(line, code) == first, f"the block at README.md line {line} is not seeded"


def signature_lines(text):
    """The text block after `<!-- signatures -->`, one signature per line (continuations joined)."""
    (body,) = [body for _, _, body, before in fenced_blocks(text)
               if before.rstrip().endswith("<!-- signatures -->")]
    return re.sub(r"\n\s+", " ", body).splitlines()


def test_functional_signatures_in_the_readme_are_the_functions():
    lines = signature_lines(README.read_text())
    assert len(lines) >= 4
    for shown in lines:
        call = shown.split(" = ", 1)[1]
        name = call[:call.index("(")]
        actual = f"{name}{inspect.signature(getattr(cyconv, name))}".replace("'", '"')
        assert call == actual, f"README.md shows {call}, the function is {actual}"
