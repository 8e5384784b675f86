"""How long model bundles take: export, load, and batch prediction (issue 12).

Targets on 2 CPU cores: export <= 2 s, predicting 10,000 MNIST-sized (28 x 28) images
<= 2 s. The model is the default (`LightHead` on the pool's patch representation, 256
atoms, 128 dimensions) trained on 300 labels of a 10,000-image pool (standins.py). Each
figure is the median of 3 runs after one warm-up, unless it says "first".

Baselines measured in the same run:
- export: pickling the same model with `pickle.dumps` (the unsafe format a bundle replaces;
  it saves no card, no ONNX, no checksums);
- prediction: the session's own in-process `session.model.predict_proba` (the Python and
  torch path `load_model` runs too) against onnxruntime on the bundle's `model.onnx`.

Also: `workbench predict` as a whole command (process start, imports, reading the .npz,
writing the Parquet), and a text model (BBC News chunks, TF-IDF + LSA), whose export
fits the vectoriser again from the pool's texts.

    python benchmarks/bundle_speed.py [--quick]  ->  results/bundle_speed.json
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import standins  # noqa: E402
from report import machine, now, save  # noqa: E402
from timing import timed as _timed  # noqa: E402

from workbench import Pool, Session, load_model  # noqa: E402

TARGETS_S = {"export": 2.0, "predict_10k_28x28": 2.0}


def timed(fn, repeat: int = 3) -> tuple[float, object]:
    return _timed(fn, repeat, warmup=True)  # every figure here is after a warm-up


def trained_session(pool: Pool, y, test, store: Path, n_labels: int) -> Session:
    session = Session(pool, store, watch=False, test=test)
    order = np.random.default_rng(0).permutation(len(pool))[:n_labels]
    session.label_many({pool.item_ids[i]: y[i] for i in order})
    session.inputs.representation()  # the one-off representation is not part of export
    session.retrain()
    return session


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="small pools, to try the script")
    args = parser.parse_args()
    import onnxruntime as ort

    scale = 10 if args.quick else 1
    os.environ["WORKBENCH_CACHE_DIR"] = tempfile.mkdtemp(prefix="wb-bench-cache-")
    work = Path(tempfile.mkdtemp(prefix="wb-bundle-bench-"))
    report = {"date": now(),
              "machine": machine(load_average_at_start=True, onnxruntime=ort.__version__),
              "setup": "median of 3 after a warm-up; default learner LightHead on the patch "
                       "representation; 300 random labels", "targets_s": TARGETS_S}

    def log(name, value):
        print(f"{name}: {json.dumps(value)}", flush=True)
        report[name] = value

    # -- 28 x 28 images ---------------------------------------------------------------------
    X, y, X_new, _ = standins.digits_28_split(0, n_pool=10_000 // scale, n_test=10_000 // scale)
    pool = Pool.from_arrays(X, y)
    session = trained_session(pool, y, None, work / "store", 300 // scale)
    started = time.perf_counter()
    bundle = session.export(work / "digits28")
    first_export = time.perf_counter() - started  # includes committing the labels
    export_s, _ = timed(lambda: session.export(work / "digits28", overwrite=True))
    zip_s, _ = timed(lambda: session.export(work / "digits28.zip", as_zip=True, overwrite=True))
    pickle_s, blob = timed(lambda: pickle.dumps(session.model))
    sizes = {p.name: p.stat().st_size for p in bundle.iterdir()}
    log("export_28x28", {"first_s": round(first_export, 3), "folder_s": export_s, "zip_s": zip_s,
                         "baseline_pickle_s": pickle_s, "ratio_to_pickle": round(export_s / pickle_s, 1),
                         "bytes": sizes, "pickle_bytes": len(blob)})
    load_s, model = timed(lambda: load_model(bundle))
    log("load_model_28x28_s", load_s)

    X_new = X_new.astype(np.float32)
    in_session_s, expected = timed(lambda: session.model.predict_proba(X_new))
    loaded_s, got = timed(lambda: model.predict_proba(X_new))
    onnx = ort.InferenceSession(str(bundle / "model.onnx"), providers=["CPUExecutionProvider"])
    # in batches, as the model card says: the graph's maps take ~0.5 MB per 28 x 28 item,
    # and all 10,000 at once ran this 23 GB machine out of memory
    onnx_s, proba = timed(lambda: np.concatenate([
        onnx.run(["probabilities"], {"items": X_new[i:i + 256]})[0] for i in range(0, len(X_new), 256)]))
    log("predict_10k_28x28", {
        "items": len(X_new), "in_session_s": in_session_s, "load_model_s": loaded_s,
        "onnxruntime_s": onnx_s, "onnx_vs_in_session": round(onnx_s / in_session_s, 2),
        "max_abs_diff_load_model": float(np.abs(got - expected).max()),
        "max_abs_diff_onnx": float(np.abs(proba - expected).max()),
        "same_classes_onnx": float((proba.argmax(1) == expected.argmax(1)).mean())})

    data = work / "new.npz"
    np.savez(data, X=X_new)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "workbench", "predict", str(bundle), str(data),
                           "--out", str(work / "predictions.parquet")], capture_output=True, text=True)
    log("cli_predict_10k_28x28", {"whole_command_s": round(time.perf_counter() - started, 2),
                                  "exit_code": done.returncode, "stderr_tail": done.stderr[-300:]})
    session.close()

    # -- texts ---------------------------------------------------------------------------------
    texts, labels = standins.bbc_chunks(2_000 // scale, seed=0)
    text_pool = Pool.from_texts(texts, labels)
    text_session = trained_session(text_pool, np.asarray(labels), None, work / "text-store", 200 // scale)
    started = time.perf_counter()
    text_bundle = text_session.export(work / "bbc")
    first = time.perf_counter() - started  # fits the vectoriser again (once per session)
    again_s, _ = timed(lambda: text_session.export(work / "bbc", overwrite=True), repeat=1)
    text_model = load_model(text_bundle)
    raw_s, _ = timed(lambda: text_model.predict(texts[:1000]), repeat=1)
    log("texts_2k", {"first_export_s": round(first, 2), "export_again_s": again_s,
                     "predict_1000_raw_texts_s": raw_s,
                     "same_as_session": bool((text_model.predict(text_pool) ==
                                              text_session.model.predict(text_pool)).all()),
                     "bytes": {p.name: p.stat().st_size for p in text_bundle.iterdir()}})
    text_session.close()

    report["meets_targets"] = {"export": report["export_28x28"]["folder_s"] <= TARGETS_S["export"],
                               "predict_10k_28x28": min(report["predict_10k_28x28"]["load_model_s"],
                                                        report["predict_10k_28x28"]["onnxruntime_s"])
                               <= TARGETS_S["predict_10k_28x28"]}
    if not args.quick:
        print(f"wrote {save('bundle_speed.json', report)}")


if __name__ == "__main__":
    main()
