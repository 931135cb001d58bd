"""Ship finished training runs as a named model of the package, with its model card.

    python scripts/release_model.py --run runs/wide --data ../shared/data/fer2013/fer2013.csv.gz \
        --target default --int8 --name NAME --command "moodlens train ... --out runs/wide"

Exports ``RUN/final.pt`` (several ``--run``: an ensemble averaged inside the graph) to
``src/moodlens/models/TARGET.onnx`` (parity-checked on real PublicTest faces; ``--int8``:
quantised with Training faces and checked against the float model), evaluates it on
PublicTest with the runtime classifier, measures ONNX Runtime throughput, and writes
``TARGET.json`` (machine-readable card, read by the web app and reports) and the Markdown
card (``MODEL_CARD.md`` for ``default``, ``docs/model/TARGET.md`` otherwise). Earlier
cards' numbers are kept in the history table. Never touches PrivateTest.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
from pathlib import Path

import torch

from moodlens.dataset.evaluate import evaluate
from moodlens.dataset.readers import load_dataset
from moodlens.machine import cpu_model as cpu_name
from moodlens.machine import faces_per_second
from moodlens.recognition.classifier import EmotionClassifier, load_card, resolve_model
from moodlens.spec import EMOTIONS
from moodlens.train.export import calibration_sample, export_onnx
from moodlens.train.loop import is_onnx_teacher

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "src" / "moodlens" / "models"


def throughput(model: Path, batch: int) -> float:
    return faces_per_second(EmotionClassifier(model).predict, batch)


def local_checkpoint(ref: str, referrer: Path) -> Path:
    """A checkpoint path named in ``referrer``'s config; a run made elsewhere (a GPU lease) names its path
    there, so look for the same run folder beside the referrer's run folder."""
    path = Path(ref)
    return path if path.is_file() else referrer.parent.parent / path.parent.name / path.name


def machine_words(ck: dict) -> str:
    if ck.get("device") == "cuda":
        return f"one {ck.get('machine', 'unknown').split(' + ')[-1]} GPU (several runs shared it)"
    return f"{cpu_name()}, 2 cores shared with other work"


@functools.cache
def checkpoint(path: Path) -> dict:
    """A training checkpoint, loaded once however many cards and chains refer to it."""
    return torch.load(path, map_location="cpu", weights_only=False)


def lineage(path: Path, seen: set[Path]) -> tuple[float, set[tuple[str, str]]]:
    """Training minutes and (device, machine in words) of a checkpoint together with its earlier cycles
    (``init_from``) and its teachers (checkpoints, or an ONNX model's member runs), each run counted once."""
    if path.resolve() in seen or not path.is_file():
        return 0.0, set()
    seen.add(path.resolve())
    ck = checkpoint(path.resolve())
    minutes, machines = ck["elapsed_s"] / 60, {(ck.get("device", "cpu"), machine_words(ck))}
    init = ck["config"].get("init_from")
    deps = [local_checkpoint(init, path)] if init and not is_onnx_teacher(init) else []
    if init and is_onnx_teacher(init) and (start := onnx_start(init)) and resolve_model(init).resolve() not in seen:
        seen.add(resolve_model(init).resolve())  # a cycle started from an exported model: its card has the cost
        minutes += start["train_minutes_total"]
        machines |= {(d, w) for d in start["devices"] for w in start["machines"]}  # read back as two sets
    for t in ck["config"].get("teachers") or []:
        if is_onnx_teacher(t):
            card = load_card(resolve_model(t))
            deps += [Path(m["run"]) / "final.pt" for m in card.get("members", [])]
        else:
            deps.append(local_checkpoint(t, path))
    for dep in deps:
        more, where = lineage(dep, seen)
        minutes, machines = minutes + more, machines | where
    return minutes, machines


def onnx_start(model: str) -> dict | None:
    """The card entry of the single net inside an exported model a run started from (``--init-from X.onnx``)."""
    members = load_card(resolve_model(model)).get("members", [])
    return members[0] if len(members) == 1 else None


def teacher_words(t: str, run: Path) -> str:
    if is_onnx_teacher(t):
        card = load_card(resolve_model(t))
        return f"{t} ({card.get('name', 'ONNX')}, scored once on the unaugmented training faces)"
    return str(local_checkpoint(t, run / "final.pt"))


def member(run: Path) -> dict:
    """What the card says about one trained run: its recipe, and the cost of everything it built on."""
    ck = checkpoint((run / "final.pt").resolve())
    cfg = ck["config"]
    epochs, path, parent = ck["epochs"], run / "final.pt", cfg.get("init_from")
    while parent:  # epochs of earlier cycles: their checkpoints, or the card of the exported model started from
        if is_onnx_teacher(parent):
            epochs += (onnx_start(parent) or {}).get("epochs_total", 0)
            break
        if not (parent_path := local_checkpoint(parent, path)).is_file():
            break
        pk = checkpoint(parent_path.resolve())
        epochs, path, parent = epochs + pk["epochs"], parent_path, pk["config"].get("init_from")
    minutes, machines = lineage(run / "final.pt", set())
    params = sum(v.numel() for k, v in ck["model"].items() if k.endswith(("weight", "bias")))
    return {"run": str(run), "config": cfg, "params": int(params), "epochs_total": int(epochs),
            "train_minutes_total": round(minutes, 1), "device": ck.get("device", "cpu"),
            "machine": ck.get("machine") or cpu_name(), "torch_threads": ck.get("torch_threads"),
            "machines": sorted({words for _, words in machines}), "devices": sorted({d for d, _ in machines}),
            "teachers": [teacher_words(t, run) for t in cfg.get("teachers") or []],
            "start": (f"the exported {load_card(resolve_model(parent0)).get('name', 'model')}, weights read back "
                      f"from its graph") if (parent0 := cfg.get("init_from")) and is_onnx_teacher(parent0) else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, action="append", required=True, help="run folder; repeat for an ensemble")
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--command", action="append", required=True,
                    help="the exact commands that trained the runs, in order (repeatable)")
    ap.add_argument("--target", default="default", help="shipped model name: default, accurate, ...")
    ap.add_argument("--name", default="moodlens-vgg32")
    ap.add_argument("--int8", action="store_true", help="quantise to int8 (calibrated on Training faces)")
    ap.add_argument("--no-flip-tta", dest="flip_tta", action="store_false")
    ap.add_argument("--notes", default="")
    args = ap.parse_args()

    data = load_dataset(args.data)
    val = data.split("PublicTest")
    calib = calibration_sample(data.split("Training").images) if args.int8 else None
    onnx_path = MODELS / f"{args.target}.onnx"
    card_path = onnx_path.with_suffix(".json")
    old = json.loads(card_path.read_text()) if card_path.exists() else {}
    history = old.get("history", []) if "metrics" in old else []

    members = [member(run) for run in args.run]
    parity = export_onnx([run / "final.pt" for run in args.run], onnx_path, flip_tta=args.flip_tta,
                         parity_faces=val.images[:256], calibration_faces=calib)
    figures = ROOT / "docs" / "model" / ("publictest" if args.target == "default" else f"{args.target}-publictest")
    report = evaluate(data, model=onnx_path, split="PublicTest", out=figures)
    fps1, fps64 = throughput(onnx_path, 1), throughput(onnx_path, 64)

    today = dt.date.today().isoformat()
    params = sum(m["params"] for m in members)
    entry = {"date": today, "name": args.name, "accuracy": round(report["accuracy"], 4),
             "macro_f1": round(report["macro_f1"], 4), "params": params,
             "epochs": "+".join(str(m["epochs_total"]) for m in members),
             "train_minutes": round(sum(m["train_minutes_total"] for m in members), 1),
             # every device the members, their earlier cycles and their teachers trained on
             "device": ",".join(sorted({d for m in members for d in m["devices"]})),
             "precision": "int8" if args.int8 else "float32", "faces_per_s_batch64": round(fps64)}
    history = [h for h in history if h.get("date") != today or h.get("name") != args.name] + [entry]
    card = json.loads(card_path.read_text())  # written by export_onnx
    card.update({
        "name": args.name, "target": args.target, "version": today, "classes": list(EMOTIONS), "params": params,
        "metrics": {"publictest": {k: report[k] for k in ("n", "accuracy", "macro_f1", "weighted_f1", "ece", "nll",
                                                          "temperature_fit")}
                    | {"per_class": report["per_class"]}},
        "caveats": "Fear and disgust are the least reliable classes (see per-class F1). Apparent facial "
                   "expression on 48x48 grayscale crops, not inner emotion.",
        "members": members,
        "training": {"commands": args.command, "command": " && ".join(args.command),
                     "runs": [str(r) for r in args.run], "data": "FER2013 Training split (28,709 faces)",
                     "selection": "PublicTest (3,589 faces); PrivateTest never used",
                     "wall_time_min": entry["train_minutes"], "machine": training_machines(members)},
        "speed": {"onnxruntime_faces_per_s_batch1": round(fps1), "onnxruntime_faces_per_s_batch64": round(fps64),
                  "machine": f"{cpu_name()}, {torch.get_num_threads()} threads"},
        "parity": parity, "history": history, "notes": args.notes,
    })
    card_path.write_text(json.dumps(card, indent=2))
    md = ROOT / "MODEL_CARD.md" if args.target == "default" else ROOT / "docs" / "model" / f"{args.target}.md"
    md.write_text(render_card(card, onnx_path, figures.relative_to(ROOT)))
    print(json.dumps({k: card[k] for k in ("name", "version", "metrics", "speed")}, indent=2))


def training_machines(members: list[dict]) -> str:
    """Where the members, their earlier cycles and their teachers were trained, in words."""
    return "; ".join(sorted({w for m in members for w in m["machines"]}))


def recipe_line(m: dict) -> str:
    c = m["config"]
    start = f"; a further cycle from `{c['init_from']}`" if c.get("init_from") else ""
    if m.get("start"):
        start += f" ({m['start']})"
    if m.get("teachers"):
        start += (f"; distilled from {', '.join(f'`{t}`' for t in m['teachers'])} (weight {c['distill_weight']}, "
                  f"temperature {c['distill_temperature']})")
    return (f"| `{m['run']}` | {'-'.join(map(str, c['widths']))} | {m['params'] / 1e6:.2f} M | {c['epochs']}{start} | "
            f"{c['lr']} | {c['dropout']} | {c['balance']} | {m['epochs_total']} | {m['train_minutes_total']} |")


def render_card(c: dict, onnx_path: Path, figures: Path) -> str:
    m = c["metrics"]["publictest"]
    t = c["training"]
    cfg = c["members"][0]["config"]
    rows = "\n".join(f"| {e} | {v['precision']:.3f} | {v['recall']:.3f} | {v['f1']:.3f} | {v['support']} |"
                     for e, v in m["per_class"].items())
    hist = "\n".join(f"| {h['date']} | {h['name']} | {h['accuracy']:.4f} | {h['macro_f1']:.4f} | {h['epochs']} | "
                     f"{h['train_minutes']} | {h['device']} | {h.get('precision', 'float32')} | "
                     f"{h.get('faces_per_s_batch64', 'not recorded')} |" for h in c["history"])
    members = "\n".join(recipe_line(x) for x in c["members"])
    tf = m["temperature_fit"]
    temperature_row = (f"| if temperature scaling were fitted on PublicTest (T = {tf['temperature']:.2f}; fitted and "
                       f"scored on the same split, so optimistic; not applied) | ECE {tf['ece']:.4f}, "
                       f"NLL {tf['nll']:.4f} |")
    commands = "\n".join(f"    {cmd}" for cmd in t["commands"])
    runs = " ".join(f"--run {r}" for r in t["runs"])
    ensemble = (f"An ensemble of {len(c['members'])} networks: their probabilities are averaged inside the graph. "
                if len(c["members"]) > 1 else "")
    int8 = (f"Weights and activations of the convolutional layers are int8 (static quantisation with ONNX Runtime, "
            f"calibrated on {c['parity']['int8']['calibration_n']} Training faces); on 256 PublicTest faces it "
            f"agrees with the float model's top class on {c['parity']['int8']['top1_agreement']:.1%} "
            f"(max |dp| {c['parity']['int8']['max_abs_diff']:.3f}). " if "int8" in c["parity"] else "")
    return f"""# Model card: {c['name']} ({c['version']})

The expression classifier that ships as `{c['target']}` (`src/moodlens/models/{onnx_path.name}`,
{onnx_path.stat().st_size / 1e6:.1f} MB, {c['params']:,} parameters; `--model {c['target']}`).
Machine-readable twin: `{onnx_path.with_suffix('.json').name}`. Generated by `scripts/release_model.py`.

## What it does
Input: a 48x48 grayscale face crop (the runtime cuts it from a detector box; see
`moodlens.recognition.preprocess`), centre-cropped to 44x44, raw pixels 0..255 (normalisation is inside
the graph). Output: probabilities for {', '.join(EMOTIONS)}.
{ensemble}Test-time augmentation: {c['tta']}. {int8}All of this is inside the exported graph, so the
runtime does exactly what was measured below.
{c['notes']}

It recognises **apparent facial expressions** of posed and spontaneous web images, not inner
emotion. See the README's "Responsible use".

## Data
FER2013 (Goodfellow et al., 2013), from `../shared/data/fer2013/fer2013.csv.gz`:
trained on **Training** (28,709 faces) only; settings chosen on **PublicTest** (3,589 faces).
The PrivateTest split was never available to us and nothing was tuned on it. Class balancing
({cfg['balance']}) uses training-split counts only; augmentation is applied to training batches only.

## Recipe
VGG-style CNN: per stage {cfg['convs_per_stage']} x (3x3 conv, BatchNorm, ReLU), max-pool; global average pool,
dropout, a 256-unit hidden layer, softmax output.
SGD (Nesterov, momentum {cfg['momentum']}, weight decay {cfg['weight_decay']}), one-cycle cosine schedule
({cfg['warmup_frac']:.0%} warm-up), batch {cfg['batch_size']}, label smoothing {cfg['label_smoothing']},
exponential moving average of weights (decay {cfg['ema_decay']}; the EMA weights ship).
Augmentation per batch: random shift ±{cfg['augment']['max_shift_px']} px, rotation
±{cfg['augment']['max_rotation_deg']}°, scale {tuple(cfg['augment']['scale_range'])}, horizontal flip, brightness and
contrast ±{cfg['augment']['brightness']}, random erasing (p={cfg['augment']['erase_prob']}).

| run | widths | params | epochs (this cycle) | peak lr | dropout | balancing | epochs in all | train min in all |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |
{members}

Training minutes in all include any earlier cycle and, for a distilled net, its teachers' training.

Reproduce (training steps took {t['wall_time_min']} min in all, every cycle and teacher counted once; data
loading, teacher scoring and per-epoch PublicTest scoring come on top; on {t['machine']}):

{commands}
    python scripts/release_model.py {runs} --target {c['target']}{' --int8' if 'int8' in c['parity'] else ''} \\
        --data ../shared/data/fer2013/fer2013.csv.gz --name {c['name']} --command "..."
    moodlens evaluate --model {c['target']} --data ../shared/data/fer2013/fer2013.csv.gz \\
        --split PublicTest --out out/eval

## PublicTest metrics (n = {m['n']:,})
| metric | value |
| --- | --- |
| accuracy | **{m['accuracy']:.4f}** |
| macro-F1 | **{m['macro_f1']:.4f}** |
| weighted F1 | {m['weighted_f1']:.4f} |
| expected calibration error (15 bins) | {m['ece']:.4f} |
| negative log-likelihood | {m['nll']:.4f} |
{temperature_row}

| class | precision | recall | F1 | support |
| --- | --- | --- | --- | --- |
{rows}

Confusion matrix, reliability diagram and example grids: `{figures}/`.
Fear and disgust are the weak classes, as everywhere on FER2013; treat them as unreliable.

## Speed
ONNX Runtime, {c['speed']['machine']}: {c['speed']['onnxruntime_faces_per_s_batch1']:,} faces/s at batch 1,
{c['speed']['onnxruntime_faces_per_s_batch64']:,} faces/s at batch 64 (everything above included).
Comparison with PyTorch eager and the float model: `python benchmarks/bench_classifier.py`.

ONNX export parity of the float graph with PyTorch on 256 real PublicTest faces:
max |Δp| = {c['parity']['parity_max_abs_diff']:.1e} (tolerance {c['parity']['tolerance']}).

## History
| date | name | PublicTest acc | macro-F1 | epochs | train min | device | precision | faces/s (b64) |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |
{hist}

## Limits
- FER2013 faces are low-resolution, mostly frontal, web-sourced, and unevenly represent age,
  ethnicity and gender; accuracy on other populations, angles and lighting is unmeasured.
- Labels are single crowd labels with known noise (human agreement is about 65 %).
- FER2013 itself has 270 faces that appear pixel-identical in both Training and PublicTest
  (`moodlens data explore` counts them), which flatters PublicTest figures slightly.
- {c['caveats']}
"""


if __name__ == "__main__":
    main()
