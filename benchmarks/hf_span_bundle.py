"""What bundling a fine-tuned Hugging Face tagger costs at a realistic size: a BERT-base-sized
token classifier (12 layers, 768 wide, 110M parameters; random weights, as no pretrained
model can be fetched here) with a WordPiece tokenizer trained on the texts, fitted for one
epoch on 20 texts of `workbench.data.entity_texts`, then written as a session's bundle is
(`write_bundle` with 8 check texts: the ONNX export and the 1e-4 agreement check included)
and loaded back with `load_model`, whose spans on 30 other texts must equal the tagger's.

Reported: seconds to write and to load, each file's size, and the process's peak resident
memory (ru_maxrss) after each step; and `load_model` alone in a fresh process (its seconds,
that process's peak memory before and after), as where the bundle is deployed; and
onnxruntime alone running the bundle folder's model.onnx, which since format version 2 reads
the network's weights from model.safetensors beside it (its session's seconds to start, and
how far its tag probabilities are from the tagger's). Earlier dated comparisons in the
results file (`loading_*`, the files before the weights were kept once) are carried over.

    python benchmarks/hf_span_bundle.py
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from report import machine, now, save  # noqa: E402


def _peak_gb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2)


def _fresh_load(path: Path) -> dict:
    """`load_model` in a process of its own, as someone who deploys the bundle runs it: the
    seconds it takes (imports apart) and that process's peak resident memory before and after."""
    code = textwrap.dedent(f"""
        import json, time
        import torch, transformers  # imports apart: what the process holds before loading
        from workbench import load_model
        # VmHWM, not ru_maxrss: a process started from this one inherits its ru_maxrss
        status = lambda: dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
        peak = lambda: round(int(status()["VmHWM"].split()[0]) / 1e6, 2)
        before, t = peak(), time.perf_counter()
        model = load_model({str(path)!r})
        print(json.dumps({{"load_s": round(time.perf_counter() - t, 2), "peak_gb_before": before,
                          "peak_gb_after": peak()}}))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _onnxruntime_from_the_folder(path: Path, tagger, texts: list[str]) -> dict:
    """onnxruntime given the bundle folder's model.onnx, as the model card shows it: seconds to
    start a session, and the largest difference from the tagger's own probabilities over the
    first subword of each word of `texts`."""
    import onnxruntime as ort

    from workbench.learn.token_tagger import TokenFeatures

    t = time.perf_counter()
    session = ort.InferenceSession(str(path / "model.onnx"), providers=["CPUExecutionProvider"])
    start_s = round(time.perf_counter() - t, 2)
    worst = 0.0
    for text in texts:
        features = TokenFeatures([text])
        inputs, first, _ = tagger._encode(features, 0)
        proba = session.run(["probabilities"], {
            "input_ids": np.asarray([inputs["input_ids"]], np.int64),
            "attention_mask": np.asarray([inputs["attention_mask"]], np.int64)})[0][0]
        seen = first >= 0
        worst = max(worst, float(np.abs(proba[first[seen]] - tagger.token_proba(features, [0])[seen]).max()))
    return {"session_start_s": start_s, "texts": len(texts), "max_difference_from_the_tagger": worst}


def _earlier(report: dict) -> dict:
    """The dated comparisons of the committed results, which this run does not repeat."""
    try:
        old = json.loads((Path(__file__).parent / "results" / "hf_span_bundle.json").read_text())
    except (OSError, ValueError):
        return {}
    kept = {k: v for k, v in old.items() if k.startswith(("loading_", "files_mb_with_"))}
    if old.get("files_mb", {}).get("model.onnx", 0) > 100:  # written before the weights were kept once
        kept["files_mb_with_the_graph_whole"] = {"date": old["date"], **old["files_mb"]}
    return kept


def _model_folder(folder: Path, texts: list[str]) -> None:
    """A fast WordPiece tokenizer trained on `texts` and a random BERT-base token classifier."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertForTokenClassification, PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=4000, special_tokens=specials))
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]",
                                                             special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]",
                            cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]").save_pretrained(folder)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.get_vocab_size(), num_labels=2)  # otherwise BERT-base
    BertForTokenClassification(config).save_pretrained(folder)


def main() -> None:
    from workbench import HFTokenTagger, load_model
    from workbench.data.entity_texts import LABELS, entities
    from workbench.learn.bundle_write import write_bundle
    from workbench.learn.span_model import SpanModel
    from workbench.learn.token_tagger import TokenFeatures

    pool, test = entities(200, n_test=30, seed=0)
    texts, test_texts = pool.items["text"].tolist(), test.items["text"].tolist()
    truth = [pool.true_label(i) for i in pool.item_ids]
    report = {"date": now(),
              "machine": machine(),
              "protocol": __doc__.split("\n\n")[0].replace("\n", " ")}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "bert-base-random"
        _model_folder(folder, texts + test_texts)
        t = time.perf_counter()
        tagger = HFTokenTagger(str(folder), epochs=1, batch_size=8).fit_spans(
            TokenFeatures(texts), range(20), truth[:20])
        report["fit_s"], report["peak_gb_after_fit"] = round(time.perf_counter() - t, 1), _peak_gb()
        t = time.perf_counter()
        path = write_bundle(SpanModel(tagger, LABELS), Path(tmp) / "bundle", card="# bench",
                            check_items=texts[:8])
        report["write_s"], report["peak_gb_after_write"] = round(time.perf_counter() - t, 1), _peak_gb()
        report["files_mb"] = {f.name: round(f.stat().st_size / 1e6, 1) for f in sorted(path.iterdir())}
        t = time.perf_counter()
        loaded = load_model(path)
        report["load_s"], report["peak_gb_after_load"] = round(time.perf_counter() - t, 1), _peak_gb()
        expected = [s for s, _ in tagger.predict_spans(TokenFeatures(test_texts), range(len(test_texts)))]
        report["same_spans_as_the_tagger"] = loaded.predict_spans(test_texts) == expected
        report["load_in_a_fresh_process"] = _fresh_load(path)
        report["onnxruntime_from_the_folder"] = _onnxruntime_from_the_folder(path, tagger, test_texts)
    report.update(_earlier(report))
    save("hf_span_bundle.json", report, load_average_at_end=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
