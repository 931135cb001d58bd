"""The model commands through the real ``moodlens`` typer app: data explore, train, export, evaluate."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fer_synthetic import synthetic_faces, write_fer_csv
from typer.testing import CliRunner

from moodlens.cli import app
from moodlens.dataset.readers import load_dataset
from moodlens.spec import EMOTIONS

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]


def invoke(*args: str):
    result = runner.invoke(app, [str(a) for a in args])
    return result, result.output  # stdout and stderr, as a user sees them


@pytest.fixture(scope="module")
def csv_with_bad_rows(tmp_path_factory) -> Path:
    """28 synthetic faces in all three splits (rows 2-29), then two bad rows (30 and 31)."""
    x, y = synthetic_faces(4, seed=3)
    splits = [("Training", "PublicTest", "Training", "PrivateTest")[i % 4] for i in range(len(y))]
    bad = [["2", "1 2 3", "Training"], ["9", " ".join(["0"] * 2304), "PublicTest"]]
    return write_fer_csv(tmp_path_factory.mktemp("bad") / "fer.csv", x, y, splits, extra_rows=bad)


def test_data_explore(csv_with_bad_rows, tmp_path):
    result, out = invoke("data", "explore", "--data", csv_with_bad_rows, "--out", tmp_path, "--skip-bad")
    assert result.exit_code == 0, out
    assert "| PrivateTest |" in out and "skipped 2 bad" in out
    for name in ("class_counts.md", "class_counts.png", "sample_faces.png", "summary.json"):
        assert (tmp_path / name).stat().st_size > 0, name
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["n"] == 28 and summary["splits"]["PublicTest"]["n"] == 7
    assert summary["splits"]["Training"]["counts"] == dict.fromkeys(EMOTIONS, 2)
    assert summary["skipped_bad"]["count"] == 2
    assert "row 30: pixel count 3" in summary["skipped_bad"]["first"][0]
    assert "row 31: unknown label 9" in summary["skipped_bad"]["first"][1]


def test_bad_data_without_skip_bad_is_one_clear_line(csv_with_bad_rows, tmp_path):
    result, out = invoke("data", "explore", "--data", csv_with_bad_rows, "--out", tmp_path)
    assert result.exit_code == 1
    assert f"error: {csv_with_bad_rows}: row 30: pixel count 3 != 2304" in out
    assert "Traceback" not in out
    result, out = invoke("evaluate", "--data", tmp_path / "missing.csv", "--out", tmp_path)
    assert result.exit_code == 1 and "no such file or folder" in out


def test_evaluate_default_model_on_private_split(csv_with_bad_rows, tmp_path):
    result, out = invoke("evaluate", "--model", "default", "--data", csv_with_bad_rows, "--split", "PrivateTest",
                         "--out", tmp_path / "eval", "--json", tmp_path / "report.json", "--skip-bad")
    assert result.exit_code == 0, out
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["split"] == "PrivateTest" and report["n"] == 7
    assert np.array(report["confusion_matrix"]).sum() == 7
    assert report["skipped_bad"]["count"] == 2
    assert f"accuracy {report['accuracy']:.4f}" in out
    assert (tmp_path / "eval" / "confusion_matrix.png").is_file()
    result, out = invoke("evaluate", "--data", csv_with_bad_rows, "--split", "Holdout", "--out", tmp_path,
                         "--skip-bad")
    assert result.exit_code == 1 and "no split named 'Holdout'" in out


def test_train_resume_export_evaluate(synthetic_fer_csv_gz, tmp_path):
    pytest.importorskip("torch")
    run = tmp_path / "run"
    tiny = ["--epochs", "2", "--batch-size", "16", "--widths", "8,16", "--ema-decay", "0.9", "--threads", "1"]
    result, out = invoke("train", "--data", synthetic_fer_csv_gz, "--out", run, *tiny, "--stop-after-epoch", "1")
    assert result.exit_code == 0, out
    assert (run / "last.pt").is_file() and not (run / "final.pt").exists()
    result, out = invoke("train", "--data", synthetic_fer_csv_gz, "--out", run, *tiny, "--resume")
    assert result.exit_code == 0, out
    assert "resumed from" in out and (run / "final.pt").is_file()
    config = json.loads((run / "config.json").read_text())
    assert config["widths"] == [8, 16] and config["batch_size"] == 16 and config["epochs"] == 2

    result, out = invoke("export", "--checkpoint", run / "final.pt", "--out", tmp_path / "m.onnx",
                         "--data", synthetic_fer_csv_gz, "--parity-n", "50")
    assert result.exit_code == 0, out
    assert "parity on 50 real PublicTest faces" in out
    meta = json.loads((tmp_path / "m.json").read_text())
    assert meta["parity"]["parity_n"] == 50 and meta["parity"]["parity_max_abs_diff"] <= 1e-4

    result, out = invoke("evaluate", "--model", tmp_path / "m.onnx", "--data", synthetic_fer_csv_gz,
                         "--out", tmp_path / "eval")
    assert result.exit_code == 0, out
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert report["model"] == str(tmp_path / "m.onnx") and report["n"] == 70


def test_train_rejects_bad_options(synthetic_fer_csv_gz, tmp_path):
    pytest.importorskip("torch")
    for option, value, message in (("--device", "tpu", "--device must be cpu or cuda"),
                                   ("--widths", "8,x", "--widths must be comma-separated integers"),
                                   ("--balance", "magic", "balance must be one of"),
                                   ("--teacher", "no-such-run/final.pt", "no checkpoint at no-such-run/final.pt"),
                                   ("--distill-weight", "1.5", "distill_weight must be in [0, 1]")):
        result, out = invoke("train", "--data", synthetic_fer_csv_gz, "--out", tmp_path, option, value)
        assert result.exit_code == 1 and message in out, out
    result, out = invoke("export", "--checkpoint", tmp_path / "none.pt", "--out", tmp_path / "m.onnx")
    assert result.exit_code == 1 and "checkpoint not found" in out
    result, out = invoke("export", "--checkpoint", tmp_path / "none.pt", "--out", tmp_path / "m.onnx", "--int8")
    assert result.exit_code == 1 and "checkpoint not found" in out


def test_models_are_named_or_paths(synthetic_fer_csv_gz, tmp_path):
    """Shipped models resolve by name; an unknown name is a clear error that lists the shipped ones."""
    from moodlens.recognition.classifier import default_model_path, resolve_model, shipped_models

    shipped = shipped_models()
    assert shipped["default"] == default_model_path() == resolve_model(None) == resolve_model("default")
    assert all(resolve_model(name) == path and path.with_suffix(".json").is_file() for name, path in shipped.items())
    result, out = invoke("evaluate", "--model", "fastest", "--data", synthetic_fer_csv_gz, "--out", tmp_path)
    assert result.exit_code == 1 and "model not found: fastest" in out and "default" in out, out


def _run_without(module: str, *args: str) -> subprocess.CompletedProcess:
    """The CLI in a fresh interpreter where ``import MODULE`` fails, as on an install without its extra."""
    code = ("import sys\n"
            "class Missing:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            f"        if name.split('.')[0] == {module!r}:\n"
            "            raise ModuleNotFoundError(f'No module named {name!r}')\n"
            "sys.meta_path.insert(0, Missing())\n"
            "from moodlens.cli import app\n"
            "app()\n")
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)


def _run_without_torch(*args: str) -> subprocess.CompletedProcess:
    return _run_without("torch", *args)


def test_without_torch_train_says_how_to_install_it(synthetic_fer_csv_gz, tmp_path):
    proc = _run_without_torch("train", "--data", str(synthetic_fer_csv_gz), "--out", str(tmp_path))
    assert proc.returncode == 1
    assert "pip install 'moodlens[train]'" in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stderr.count("error:") == 1, proc.stderr  # one line, not a second empty one
    # evaluate needs no torch at all
    proc = _run_without_torch("evaluate", "--data", str(synthetic_fer_csv_gz), "--out", str(tmp_path / "e"))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "e" / "report.json").is_file()


def test_without_scikit_learn_evaluate_says_how_to_install_it(synthetic_fer_csv_gz, tmp_path):
    proc = _run_without("sklearn", "evaluate", "--data", str(synthetic_fer_csv_gz), "--out", str(tmp_path))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "pip install 'moodlens[data]'" in proc.stderr and proc.stderr.count("error:") == 1, proc.stderr
    packed = tmp_path / "p.npz.xz"
    proc = _run_without("sklearn", "data", "pack", "--data", str(synthetic_fer_csv_gz), "--out", str(packed))
    assert proc.returncode == 0, proc.stderr  # packing (and the runtime) need no scikit-learn
    assert load_dataset(packed).images.shape == (280, 48, 48) and "280 faces" in proc.stdout


def test_runtime_and_cli_do_not_import_torch():
    code = ("import sys, moodlens.cli, moodlens.dataset.evaluate, moodlens.dataset.explore, "
            "moodlens.recognition.classifier, moodlens.card, "
            "moodlens.train.config; print('torch' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == "False", proc.stderr
    # The runtime needs neither scikit-learn nor scikit-image (core install), and --help needs no ONNX Runtime.
    code = ("import sys, moodlens.cli, moodlens.recognition.analyzer, moodlens.demo, moodlens.events.report, "
            "moodlens.web.app; print(sorted(m for m in ('torch', 'sklearn', 'skimage') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == "[]", proc.stderr
    code = "import sys, moodlens.cli; print('onnxruntime' in sys.modules, 'pydantic' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == "False False", proc.stderr


def test_docs_recipe_table_matches_train_config():
    """docs/model.md's default-recipe table holds TrainConfig's values, so the docs cannot drift."""
    from dataclasses import asdict

    from moodlens.train.config import TrainConfig

    text = (ROOT / "docs" / "model.md").read_text()
    documented = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and cells[0].startswith("`") and cells[0].endswith("`"):
            documented[cells[0].strip("`")] = cells[1].strip("`")
    defaults = asdict(TrainConfig())
    flat = {**{k: v for k, v in defaults.items() if k != "augment"},
            **{f"augment.{k}": v for k, v in defaults["augment"].items()}}
    for key, value in flat.items():
        shown = ",".join(map(str, value)) if isinstance(value, tuple | list) else str(value)
        assert documented.get(key) == shown, f"docs/model.md: `{key}` should read {shown}"
