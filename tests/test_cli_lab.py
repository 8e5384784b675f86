"""`workbench lab`: copying the notebooks and the command it runs, without starting a server."""

import json
import sys
from pathlib import Path

import pytest

from workbench import cli, notebooks
from workbench.notebooks import MANIFEST, bundled_notebooks, copy_notebooks, lab_command

REPO_NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


@pytest.fixture
def source(tmp_path):
    src = tmp_path / "bundled"
    src.mkdir()
    (src / "01_quickstart.ipynb").write_text('{"v": 1}')
    (src / "02_other.ipynb").write_text('{"v": 1}')
    (src / "sanitize.cfg").write_text("not a notebook")
    return src


def test_bundled_notebooks_are_the_tutorials():
    found = bundled_notebooks()
    names = sorted(p.name for p in found.glob("*.ipynb"))
    assert names[0] == "01_quickstart.ipynb"
    assert names == sorted(p.name for p in REPO_NOTEBOOKS.glob("*.ipynb"))


def test_copies_only_notebooks_into_a_new_folder(source, tmp_path):
    report = copy_notebooks(tmp_path / "nb" / "deep", source=source)
    assert report.copied == ["01_quickstart.ipynb", "02_other.ipynb"]
    target = tmp_path / "nb" / "deep"
    assert sorted(p.name for p in target.iterdir()) == [
        MANIFEST, "01_quickstart.ipynb", "02_other.ipynb"]
    assert (target / "01_quickstart.ipynb").read_text() == '{"v": 1}'


def test_never_overwrites_an_edited_copy_but_updates_an_unedited_one(source, tmp_path):
    target = tmp_path / "nb"
    copy_notebooks(target, source=source)
    (target / "01_quickstart.ipynb").write_text('{"v": "my outputs"}')  # the user ran it
    (source / "01_quickstart.ipynb").write_text('{"v": 2}')  # a new release
    (source / "02_other.ipynb").write_text('{"v": 2}')
    report = copy_notebooks(target, source=source)
    assert report.kept == ["01_quickstart.ipynb"] and report.updated == ["02_other.ipynb"]
    assert (target / "01_quickstart.ipynb").read_text() == '{"v": "my outputs"}'
    assert (target / "02_other.ipynb").read_text() == '{"v": 2}'
    again = copy_notebooks(target, source=source)
    assert again.kept == ["01_quickstart.ipynb"] and again.unchanged == ["02_other.ipynb"]
    assert not any(p.name.endswith(".tmp") for p in target.iterdir())


def test_a_file_without_a_manifest_entry_counts_as_the_users(source, tmp_path):
    target = tmp_path / "nb"
    target.mkdir()
    (target / "01_quickstart.ipynb").write_text("mine")
    (target / MANIFEST).write_text("not json")
    report = copy_notebooks(target, source=source)
    assert report.kept == ["01_quickstart.ipynb"] and report.copied == ["02_other.ipynb"]
    assert (target / "01_quickstart.ipynb").read_text() == "mine"
    assert set(json.loads((target / MANIFEST).read_text())) == {"02_other.ipynb"}


def test_target_that_is_a_file_is_a_clear_error(source, tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError, match="is a file"):
        copy_notebooks(tmp_path / "file", source=source)


def test_lab_command(tmp_path):
    nb = tmp_path / "01_quickstart.ipynb"
    cmd = lab_command(nb)
    assert cmd[:5] == [sys.executable, "-m", "jupyter", "lab", str(nb)]
    assert "--no-browser" not in cmd
    cmd = lab_command(nb, no_browser=True, port=8899)
    assert "--no-browser" in cmd and "--ServerApp.port=8899" in cmd


def test_cli_lab_copies_into_the_default_folder_and_runs_jupyter(monkeypatch, tmp_path, capsys):
    ran = []
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(notebooks, "_run", lambda cmd: ran.append(cmd) or 0)
    assert cli.main(["lab", "--no-browser", "--port", "9999"]) == 0
    target = tmp_path / "workbench-notebooks"
    assert sorted(p.name for p in target.glob("*.ipynb")) == sorted(
        p.name for p in REPO_NOTEBOOKS.glob("*.ipynb"))
    (cmd,) = ran
    assert cmd[3:5] == ["lab", str(Path("workbench-notebooks") / "01_quickstart.ipynb")]
    assert "--no-browser" in cmd and "--ServerApp.port=9999" in cmd
    assert "copied 01_quickstart.ipynb" in capsys.readouterr().out


def test_cli_lab_with_dir(monkeypatch, tmp_path):
    ran = []
    monkeypatch.setattr(notebooks, "_run", lambda cmd: ran.append(cmd) or 3)
    assert cli.main(["lab", "--dir", str(tmp_path / "here")]) == 3
    assert ran[0][4] == str(tmp_path / "here" / "01_quickstart.ipynb")
    assert (tmp_path / "here" / "05_the_label_store.ipynb").exists()


def test_the_wheel_ships_every_notebook():
    """A wheel install finds the notebooks in workbench/_notebooks (see bundled_notebooks)."""
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((REPO_NOTEBOOKS.parent / "pyproject.toml").read_text())
    mapping = config["tool"]["hatch"]["build"]["targets"]["wheel"].get("force-include", {})
    for nb in REPO_NOTEBOOKS.glob("*.ipynb"):
        target = mapping.get(f"notebooks/{nb.name}") or (
            f"{mapping['notebooks']}/{nb.name}" if "notebooks" in mapping else None)
        assert target == f"workbench/_notebooks/{nb.name}", f"{nb.name} is not in the wheel"
