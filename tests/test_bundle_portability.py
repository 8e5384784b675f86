"""A bundle leaves this process and works elsewhere.

Two fresh virtual environments, as a colleague or a server would have them:
- the Binder environment the notebooks run in (built once per test run by
  tests/conftest.py from binder/requirements.txt, no site packages): `load_model` there
  gives the same classes and probabilities within 1e-6 of the session that exported it;
- a venv with only onnxruntime and numpy installed: the model card's five lines run there,
  without the workbench, torch or scikit-learn, within 1e-4.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from importlib.metadata import version

import numpy as np
import pytest

from workbench import Session, datasets

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    base = tmp_path_factory.mktemp("portable")
    pool = datasets.digits()
    session = Session(pool, base / "store", watch=False)
    for item in session.peek(60):
        session.label(item.item_id, pool.true_label(item.item_id))
    session.retrain()
    bundle = session.export(base / "bundle.zip", as_zip=True)
    np.save(base / "X.npy", pool.X)
    np.save(base / "proba.npy", session.model.predict_proba(pool.X))
    np.save(base / "classes.npy", session.model.predict(pool.X))
    session.close()
    return base, bundle


def test_load_model_in_the_binder_environment_reproduces_the_session(exported, notebook_env):
    notebook_env.raise_if_broken()
    base, bundle = exported
    script = textwrap.dedent(f"""
        import numpy as np, workbench
        model = workbench.load_model({str(bundle)!r})
        X = np.load({str(base / 'X.npy')!r})
        np.save({str(base / 'proba-there.npy')!r}, model.predict_proba(X))
        np.save({str(base / 'classes-there.npy')!r}, model.predict(X))
        print(workbench.__file__)
    """)
    result = subprocess.run([notebook_env.python, "-c", script], capture_output=True, text=True,
                            timeout=300, env=notebook_env.environ, cwd=base)
    assert result.returncode == 0, result.stderr[-3000:]
    if notebook_env.binder:  # the copy installed in that venv, not this checkout
        assert str(notebook_env.root) in result.stdout or "site-packages" in result.stdout
    np.testing.assert_array_equal(np.load(base / "classes-there.npy"), np.load(base / "classes.npy"))
    np.testing.assert_allclose(np.load(base / "proba-there.npy"), np.load(base / "proba.npy"),
                               atol=1e-6, rtol=0)


def test_onnxruntime_and_numpy_alone_run_the_bundle(exported, tmp_path):
    import zipfile

    base, bundle = exported
    folder = tmp_path / "bundle"
    with zipfile.ZipFile(bundle) as z:
        z.extractall(folder)  # our own zip: its names were checked when it was read
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    install = subprocess.run(
        [python, "-m", "pip", "install", "-q", "--disable-pip-version-check",
         f"onnxruntime=={version('onnxruntime')}", f"numpy=={version('numpy')}"],
        capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-3000:]
    card = (folder / "README.md").read_text()
    five_lines = card.split("With onnxruntime and numpy alone")[1].split("```python\n")[1].split("```")[0]
    script = (f"import numpy as np\nX = np.load({str(base / 'X.npy')!r})\n" + five_lines
              .replace("print(", "labels = (") + f"np.save({str(tmp_path / 'onnx.npy')!r}, proba)\n"
              "for name in ('workbench', 'torch', 'sklearn'):\n"
              "    try:\n        __import__(name)\n        raise SystemExit(name + ' is installed')\n"
              "    except ImportError:\n        pass\n")
    result = subprocess.run([python, "-c", script], capture_output=True, text=True, timeout=300,
                            cwd=folder)
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-1000:]
    np.testing.assert_allclose(np.load(tmp_path / "onnx.npy"), np.load(base / "proba.npy"), atol=1e-4)
