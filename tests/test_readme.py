"""The documentation's snippets run as they are printed.

Every ```python block of README.md and docs/usage.md runs, alone, in a fresh interpreter in an empty
folder (so the files it writes land there). A block may be skipped only when the line right before it is
`<!-- not-run: REASON -->`. Shell blocks are checked without running them (they train for minutes): each
`python -m MODULE` names a module that exists, and every command of a pipe is a program.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import pytest

REPO = Path(__file__).resolve().parent.parent
DOCS = [REPO / "README.md", REPO / "docs" / "usage.md"]
_FENCE = re.compile(r"^```(?P<lang>[\w-]*)[ \t]*\n(?P<body>.*?)^```[ \t]*$", re.M | re.S)
_NOT_RUN = re.compile(r"<!--\s*not-run:\s*(?P<reason>\S.*?)\s*-->")
# Programs a shell block may start besides those on this machine's PATH.
_PROGRAMS = {"python", "python3", "make", "pip", "git", "cd", "export"}


def _blocks(lang: str) -> list[tuple[str, str, str | None]]:
    """(where, code, reason it is not run) of every fenced `lang` block of the docs."""
    out = []
    for doc in DOCS:
        text = doc.read_text()
        for m in _FENCE.finditer(text):
            if m["lang"] != lang:
                continue
            line = text.count("\n", 0, m.start()) + 1
            previous = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1]
            skip = _NOT_RUN.fullmatch(previous.strip())
            out.append((f"{doc.relative_to(REPO)}:{line}", m["body"], skip["reason"] if skip else None))
    return out


def _params(lang: str):
    return [
        pytest.param(code, id=where, marks=[pytest.mark.skip(reason=reason)] if reason else [])
        for where, code, reason in _blocks(lang)
    ]


def test_docs_have_python_blocks():
    assert len(_blocks("python")) >= 5  # the extraction works; a regex slip would pass every block


def _with_compilation_cache() -> dict[str, str]:
    """The environment, plus the persistent compilation cache that conftest gives this process."""
    env = dict(os.environ)
    if jax.config.jax_compilation_cache_dir:
        env["JAX_COMPILATION_CACHE_DIR"] = str(jax.config.jax_compilation_cache_dir)
        env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = str(jax.config.jax_persistent_cache_min_compile_time_secs)
    return env


@pytest.mark.parametrize("code", _params("python"))
def test_python_block_runs(code, tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=_with_compilation_cache(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"the block failed:\n{code}\n--- stderr ---\n{done.stderr[-4000:]}"


def _commands(code: str) -> list[str]:
    """The shell block's commands: comments dropped, continuation lines joined."""
    joined = re.sub(r"\\\n", " ", code)
    return [line.split(" #", 1)[0].strip() for line in joined.splitlines() if line.strip() and not line.startswith("#")]


def _pipeline(command: str) -> list[list[str]]:
    """The words of each program a command line starts (split at |, ||, &&, ;, quotes respected)."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    programs: list[list[str]] = [[]]
    for token in lexer:
        if token in ("|", "||", "&&", ";", "&"):
            programs.append([])
        else:
            programs[-1].append(token)
    return programs


@pytest.mark.parametrize("code", _params("bash") + _params("sh"))
def test_shell_block_is_copy_pasteable(code):
    for command in _commands(code):
        for words in _pipeline(command):
            while words and re.fullmatch(r"\w+=\S*", words[0]):
                words = words[1:]  # VAR=value before the program
            assert words, f"empty command in {command!r}"
            program = words[0]
            assert program in _PROGRAMS or shutil.which(program) or program.startswith(("./", "examples/")), (
                f"{program!r} is not a program: {command!r} (write one command per line, no pseudo-pipes)"
            )
            if program.startswith("python") and words[1:2] == ["-m"]:
                module = words[2]
                found = importlib.util.find_spec(module) is not None
                assert found, f"no module {module!r}: {command!r}"
            elif program.startswith("python") and len(words) > 1 and words[1].endswith(".py"):
                assert (REPO / words[1]).is_file(), f"no script {words[1]!r}: {command!r}"
