import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from workbench import cli
from workbench.data.pool import Pool
from workbench.loop.simulate import simulate


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "workbench", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=100)


def test_simulate_digits_writes_curve_and_prints_accuracy_last(tmp_path):
    out = tmp_path / "curve.csv"
    result = run("simulate", "--data", "digits", "--strategy", "margin", "--learner", "logreg",
                 "--budget", "60", "--batch", "10", "--initial", "20", "--seed", "1", "--out", str(out))
    assert result.returncode == 0, result.stderr
    curve = pd.read_csv(out)
    assert list(curve.columns) == ["n_labels", "accuracy", "macro_f1", "balanced_accuracy", "strategy",
                                   "seed", *[f"recall_{d}" for d in range(10)]]
    assert curve["macro_f1"].between(0, 1).all() and curve["balanced_accuracy"].between(0, 1).all()
    assert curve["n_labels"].tolist() == [20, 30, 40, 50, 60]
    assert set(curve["strategy"]) == {"margin"} and set(curve["seed"]) == {1}
    *_, metrics, last = result.stdout.strip().splitlines()
    assert last == f"accuracy@60={curve['accuracy'].iloc[-1]:.4f}"
    assert metrics == (f"macro_f1@60={curve['macro_f1'].iloc[-1]:.4f} "
                       f"balanced_accuracy@60={curve['balanced_accuracy'].iloc[-1]:.4f}")
    assert curve["accuracy"].iloc[-1] > 0.8


def test_simulate_is_reproducible_for_a_seed(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    for out in (a, b):
        assert run("simulate", "--learner", "logreg", "--strategy", "entropy", "--budget", "40",
                   "--seed", "3", "--out", str(out)).returncode == 0
    pd.testing.assert_frame_equal(pd.read_csv(a), pd.read_csv(b))


def test_simulate_uses_the_files_own_test_split_and_label_column(tmp_path):
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(0, 1, (60, 3)), rng.normal(4, 1, (60, 3))])
    df = pd.DataFrame(X, columns=["a", "b", "c"]).assign(kind=["x"] * 60 + ["y"] * 60)
    df.to_csv(tmp_path / "rows.csv", index=False)
    result = run("simulate", "--data", str(tmp_path / "rows.csv"), "--label-column", "kind",
                 "--learner", "logreg", "--strategy", "margin", "--budget", "30", "--initial", "10")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "accuracy@30=1.0000"
    np.savez(tmp_path / "d.npz", X=X[::2], y=np.repeat([0, 1], 30), X_test=X[1::2],
             y_test=np.repeat([0, 1], 30))
    result = run("simulate", "--data", str(tmp_path / "d.npz"), "--learner", "logreg",
                 "--budget", "30", "--initial", "10")
    assert result.returncode == 0, result.stderr


def test_budget_larger_than_the_pool_is_a_clear_error():
    result = run("simulate", "--learner", "logreg", "--budget", "5000")
    assert result.returncode == 2
    assert "budget 5000 is larger than the pool available for labeling (1257 items" in result.stderr


def test_unknown_data_is_a_clear_error():
    result = run("simulate", "--data", "no-such-file.csv")
    assert result.returncode == 2 and "'no-such-file.csv' is neither 'digits'" in result.stderr


def test_simulate_labels_texts_from_a_csv(tmp_path):
    words = {"sport": "match goal team won league", "money": "shares bank profit market price"}
    rng = np.random.default_rng(0)
    rows = [{"topic": t, "text": " ".join(rng.choice(w.split(), 4)) + f" note {i}"}
            for i in range(60) for t, w in words.items()]
    pd.DataFrame(rows).to_csv(tmp_path / "texts.csv", index=False)
    out = tmp_path / "curve.csv"
    result = run("simulate", "--data", str(tmp_path / "texts.csv"), "--text-column", "text",
                 "--label-column", "topic", "--budget", "30", "--initial", "10", "--out", str(out))
    assert result.returncode == 0, result.stderr
    curve = pd.read_csv(out)
    assert {"recall_money", "recall_sport"} <= set(curve.columns)
    assert curve["accuracy"].iloc[-1] > 0.9
    # without --text-column the file has no numeric features: the error says what to pass
    result = run("simulate", "--data", str(tmp_path / "texts.csv"), "--label-column", "topic")
    assert result.returncode == 2 and "name their column with --text-column" in result.stderr


def main(capsys, *args) -> tuple[int, str, str]:
    """The command in-process: fast enough for the errors that come before any training."""
    code = cli.main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_simulate_without_ground_truth_names_the_flag_and_the_columns(tmp_path, capsys):
    sms = pd.DataFrame({"id": ["m1", "m2"], "text": ["win a prize now", "lunch at noon?"],
                        "is_spam": [1, 0]})
    sms.to_csv(tmp_path / "sms.csv", index=False)
    code, _, err = main(capsys, "simulate", "--data", tmp_path / "sms.csv", "--text-column", "text")
    assert code == 2
    assert err == ("workbench: error: simulation needs ground truth labels, and pool 'sms' has none; "
                   "give the column that holds the true labels with --label-column NAME "
                   "(sms.csv has columns 'id', 'is_spam')\n")
    wide = pd.DataFrame(np.ones((2, 14)), columns=[f"f{i}" for i in range(14)])
    wide.to_parquet(tmp_path / "wide.parquet")
    code, _, err = main(capsys, "simulate", "--data", tmp_path / "wide.parquet")
    assert code == 2 and "pool 'wide' has none; give the column that holds the true labels with " \
        "--label-column NAME (wide.parquet has columns 'f0', 'f1', " in err
    assert "'f11' and 2 more)" in err
    np.savez(tmp_path / "arrays.npz", X=np.ones((4, 2)))
    code, _, err = main(capsys, "simulate", "--data", tmp_path / "arrays.npz")
    assert code == 2 and "pool 'arrays' has none; arrays.npz needs an array 'y' of true labels" in err


def test_simulate_on_a_folder_without_class_folders_says_what_it_needs(tmp_path, capsys):
    (tmp_path / "scans").mkdir()
    for i in range(3):
        Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "scans" / f"{i}.png")
    (tmp_path / "scans" / "notes.txt").write_text("which is which")
    code, _, err = main(capsys, "simulate", "--data", tmp_path / "scans")
    assert code == 2
    warning, error = err.splitlines()
    assert warning.startswith("workbench: warning: skipped 1 file that is not an image under ")
    assert warning.endswith(": notes.txt (images end in .bmp, .gif, .jpeg, .jpg, .png, .tif, "
                            ".tiff, .webp)")
    assert error == ("workbench: error: simulation needs ground truth labels, and pool 'scans' has "
                     "none; --data needs one subfolder per class (cats/1.png, dogs/2.png), whose "
                     "names are the true labels")


def test_simulate_in_python_names_the_pool_arguments():
    with pytest.raises(ValueError, match=r"pool 'arrays' has none; build the pool with them: "
                                         r"Pool.from_file\(path, label_column=NAME\)") as caught:
        simulate(Pool.from_arrays(np.ones((4, 2))))
    assert "y= for Pool.from_texts" in str(caught.value) and "--" not in str(caught.value)
