"""Training, evaluation helpers and ONNX export. Needs the ``train`` extra (PyTorch)."""
