"""The Markdown model card people read, rendered from the :class:`~moodlens.card.ModelCard` the package reads."""

from __future__ import annotations

from pathlib import Path

from moodlens.card import IndependentEvaluation, ModelCard, NetProvenance
from moodlens.spec import EMOTIONS


def _recipe_row(net: NetProvenance) -> str:
    c = net.config
    cycle = f"; a further cycle from `{c.init_from}`" if c.init_from else ""
    if net.start:
        cycle += f" ({net.start})"
    if net.teachers:
        cycle += (f"; distilled from {', '.join(f'`{t}`' for t in net.teachers)} (weight {c.distill_weight}, "
                  f"temperature {c.distill_temperature})")
    return (f"| `{net.checkpoint}` | {'-'.join(map(str, c.widths))} | {net.params / 1e6:.2f} M | {c.epochs}{cycle} | "
            f"{c.lr} | {c.dropout} | {c.balance} | {net.epochs_total} | {net.train_minutes_total} |")


def _as_reported(share: float | None) -> str:
    """A share with the digits it was reported with (up to 4): 0.7244, 0.747."""
    return "not reported" if share is None else f"{share:.4f}".rstrip("0")


def _evaluation_row(e: IndependentEvaluation) -> str:
    classes = "all 7" if e.classes == EMOTIONS else f"{len(e.classes)} ({', '.join(e.classes)})"
    n = f"{e.n:,}" if e.n else "not reported"
    return (f"| {e.data} | {classes} | {n} | **{_as_reported(e.accuracy)}** | {_as_reported(e.macro_f1)} | "
            f"{e.date} | {e.measured_by}; {e.method} |")


def _metrics_section(card: ModelCard, figures: Path) -> str:
    m = card.split("PublicTest")
    if m is None:
        return "## PublicTest metrics\nNot measured.\n"
    rows = "\n".join(f"| {e} | {v.precision:.3f} | {v.recall:.3f} | {v.f1:.3f} | {v.support} |"
                     for e, v in m.per_class.items())
    tf = m.temperature_fit
    temperature = (f"| if temperature scaling were fitted on PublicTest (T = {tf.temperature:.2f}; fitted and scored "
                   f"on the same split, so optimistic; not applied) | ECE {tf.ece:.4f}, NLL {tf.nll:.4f} |\n"
                   if tf else "")
    return f"""## PublicTest metrics (n = {m.n:,})
| metric | value |
| --- | --- |
| accuracy | **{m.accuracy:.4f}** |
| macro-F1 | **{m.macro_f1:.4f}** |
| weighted F1 | {m.weighted_f1:.4f} |
| expected calibration error (15 bins) | {m.ece:.4f} |
| negative log-likelihood | {m.nll:.4f} |
{temperature}
| class | precision | recall | F1 | support |
| --- | --- | --- | --- | --- |
{rows}

Confusion matrix, reliability diagram and example grids: `{figures}/`.
Fear and disgust are the weak classes, as everywhere on FER2013; treat them as unreliable.
"""


def _independent_section(card: ModelCard) -> str:
    if not card.independent_evaluations:
        return ""
    rows = "\n".join(_evaluation_row(e) for e in card.independent_evaluations)
    return f"""
## Independent evaluations
Measured by others on data the authors never had, on exactly this file (its SHA-256 is on each record in the
JSON card). Reported as they were measured; nothing was chosen or tuned on them.

| data | classes | n | accuracy | macro-F1 | date | who and how |
| --- | --- | --- | --- | --- | --- | --- |
{rows}
"""


def _speed_section(card: ModelCard) -> str:
    parity = card.parity
    speed = (f"ONNX Runtime, {card.speed.machine}: {card.speed.onnxruntime_faces_per_s_batch1:,} faces/s at batch 1,\n"
             f"{card.speed.onnxruntime_faces_per_s_batch64:,} faces/s at batch 64 (preprocessing included).\n"
             if card.speed else "Not measured.\n")
    return f"""## Speed
{speed}Comparison with PyTorch eager and the float model: `python benchmarks/bench_classifier.py`.

ONNX export parity of the float graph with PyTorch on {parity.parity_n} real PublicTest faces:
max |Δp| = {parity.parity_max_abs_diff:.1e} (tolerance {parity.tolerance}).
"""


def _history_section(card: ModelCard) -> str:
    rows = "\n".join(f"| {h.date} | {h.name} | {h.accuracy:.4f} | {h.macro_f1:.4f} | {h.epochs} | {h.train_minutes} | "
                     f"{h.device} | {h.precision} | {h.faces_per_s_batch64 or 'not recorded'} |" for h in card.history)
    return f"""## History
| date | name | PublicTest acc | macro-F1 | epochs | train min | device | precision | faces/s (b64) |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |
{rows}
"""


def _what_it_does(card: ModelCard) -> str:
    ensemble = (f"An ensemble of {card.ensemble_size} networks: their probabilities are averaged inside the graph. "
                if card.ensemble_size > 1 else "")
    q = card.parity.int8
    int8 = (f"Weights and activations of the convolutional layers are int8 (static quantisation with ONNX Runtime, "
            f"calibrated on {q.calibration_n} Training faces); on {q.n} PublicTest faces it agrees with the float "
            f"model's top class on {q.top1_agreement:.1%} (max |dp| {q.max_abs_diff:.3f}). ") if q else ""
    return f"""## What it does
Input: a 48x48 grayscale face crop (the runtime cuts it from a detector box; see
`moodlens.recognition.preprocess`), centre-cropped to 44x44, raw pixels 0..255 (normalisation is inside
the graph). Output: probabilities for {', '.join(EMOTIONS)}.
{ensemble}Test-time augmentation: {card.tta}. {int8}All of this is inside the exported graph, so the
runtime does exactly what was measured below.
{card.notes}

It recognises **apparent facial expressions** of posed and spontaneous web images, not inner
emotion. See the README's "Responsible use".
"""


def _release_command(card: ModelCard) -> tuple[str, ...]:
    """The ``moodlens release`` call that ships the card's networks as its target (none for a plain export)."""
    if not card.target:
        return ()
    runs = " ".join(f"--run {Path(n.checkpoint).parent}" for n in card.training.nets)
    int8 = " --int8" if card.precision == "int8" else ""
    flip = "" if card.tta != "none" else " --no-flip-tta"
    return (f"moodlens release {runs} --target {card.target}{int8}{flip} --data ../shared/data/fer2013/fer2013.csv.gz "
            f"--name {card.name} --command ...",)


def _recipe_section(card: ModelCard) -> str:
    t = card.training
    cfg = t.nets[0].config
    a = cfg.augment
    nets = "\n".join(_recipe_row(n) for n in t.nets)
    commands = "\n".join(f"    {cmd}" for cmd in (*t.commands, *_release_command(card))) or "    (not recorded)"
    return f"""## Data
FER2013 (Goodfellow et al., 2013).
Training data: {t.data}, and nothing else.
Model selection: {t.selection}.
Class balancing ({cfg.balance}) uses training-split counts only; augmentation is applied to training
batches only.

## Recipe
VGG-style CNN: per stage {cfg.convs_per_stage} x (3x3 conv, BatchNorm, ReLU), max-pool; global average pool,
dropout, a 256-unit hidden layer, softmax output.
SGD (Nesterov, momentum {cfg.momentum}, weight decay {cfg.weight_decay}), one-cycle cosine schedule
({cfg.warmup_frac:.0%} warm-up), batch {cfg.batch_size}, label smoothing {cfg.label_smoothing},
exponential moving average of weights (decay {cfg.ema_decay}; the EMA weights ship).
Augmentation per batch: random shift ±{a.max_shift_px} px, rotation ±{a.max_rotation_deg}°,
scale {a.scale_range}, horizontal flip, brightness and contrast ±{a.brightness}, random erasing (p={a.erase_prob}).

| run | widths | params | epochs (this cycle) | peak lr | dropout | balancing | epochs in all | train min in all |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |
{nets}

Training minutes in all include any earlier cycle and, for a distilled net, its teachers' training.

Reproduce (training steps took {t.minutes} min in all, every cycle and teacher counted once; data loading,
teacher scoring and per-epoch PublicTest scoring come on top; on {t.machines}):

{commands}
    moodlens evaluate --model {card.target or 'MODEL.onnx'} --data ../shared/data/fer2013/fer2013.csv.gz \\
        --split PublicTest --out out/eval
"""


def render_markdown(card: ModelCard, onnx_path: Path, figures: Path) -> str:
    """The whole Markdown card; ``figures``: the PublicTest figures' folder, relative to the repository root."""
    shipped = f"ships as `{card.target}`" if card.target else "was exported"
    return f"""# Model card: {card.name} ({card.version or 'unreleased'})

The expression classifier that {shipped} (`src/moodlens/models/{onnx_path.name}`,
{onnx_path.stat().st_size / 1e6:.1f} MB, {card.params:,} parameters; `--model {card.target or onnx_path}`).
Machine-readable twin: `{onnx_path.with_suffix('.json').name}` (`moodlens.card.ModelCard`), SHA-256
`{card.sha256}`. Written by `moodlens release`.

{_what_it_does(card)}
{_recipe_section(card)}
{_metrics_section(card, figures)}{_independent_section(card)}
{_speed_section(card)}
{_history_section(card)}
## Limits
- FER2013 faces are low-resolution, mostly frontal, web-sourced, and unevenly represent age,
  ethnicity and gender; accuracy on other populations, angles and lighting is unmeasured.
- Labels are single crowd labels with known noise (human agreement is about 65 %).
- FER2013 itself has 270 faces that appear pixel-identical in both Training and PublicTest
  (`moodlens data explore` counts them), which flatters PublicTest figures slightly.
- {card.caveats}
"""
