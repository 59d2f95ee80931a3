"""The README's examples run as written, on the small world.

The Python block and every command of the command-line block are taken from README.md itself
(not copied here), run in a directory where `data/` is the small synthetic world, and must
succeed. Commands that start a server, build another world or need a cluster (serve, synth,
demo, the Spark engine) are covered by their own tests and left out here; the fresh-clone
`make demo` runs synth and demo."""

import os
import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from arbeidsindikator.cli import app

README = Path(__file__).parents[1] / "README.md"
NOT_HERE = ("serve", "synth", "demo")


def _block(heading: str, lang: str) -> str:
    """The first fenced block of `lang` under the README heading `heading`."""
    text = README.read_text(encoding="utf-8")
    section = text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    m = re.search(rf"```{lang}\n(.*?)```", section, re.S)
    assert m, f"no {lang} block under '## {heading}'"
    return m.group(1)


def _commands() -> list[list[str]]:
    out = []
    for line in _block("Command line", "bash").splitlines():
        line = line.split("  #", 1)[0].strip()
        if line.startswith("source "):  # activating the environment: the tests run inside it
            assert line == "source .venv/bin/activate"
            continue
        if line:
            out.append(shlex.split(line))
    return out


@pytest.fixture(scope="module")
def readme_dir(small_world, tmp_path_factory):
    d = tmp_path_factory.mktemp("readme")
    (d / "data").symlink_to(small_world, target_is_directory=True)
    return d


def test_the_command_line_examples_run(readme_dir, monkeypatch):
    monkeypatch.chdir(readme_dir)
    commands = _commands()
    assert all(c[0] == "arbeidsindikator" for c in commands)
    names = {c[1] for c in commands}
    # every command of the CLI is shown in the README
    assert names >= {c.name or c.callback.__name__ for c in app.registered_commands}
    ran = 0
    for c in commands:
        if c[1] in NOT_HERE or "spark" in c or "evaluering" in c:  # the evaluation needs a treatment table:
            # tests/test_evaluation.py runs it
            continue
        r = CliRunner().invoke(app, c[1:])
        assert r.exit_code == 0, f"{shlex.join(c)}\n{r.output}"
        assert "Traceback" not in r.output
        ran += 1
    assert ran >= 14
    assert (readme_dir / "publisert.csv").exists() and (readme_dir / "publisert_perioder.csv").exists()
    assert (readme_dir / "ressurser").is_dir() and (readme_dir / "rapporter").is_dir()


def test_the_python_examples_run(readme_dir, monkeypatch):
    """The Python API block, executed top to bottom in a directory with `data/`."""
    monkeypatch.chdir(readme_dir)
    code = _block("Python API", "python")
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)  # noqa: S102 - the README is ours
    model = scope["model"]
    assert model.nobs > 1000 and len(model.params) >= 3 and model.n_missing == 0
    assert os.path.exists(readme_dir / "res.duckdb")
