"""Runtimes that execute a model's towers (torch, onnxruntime), apart from model logic."""
