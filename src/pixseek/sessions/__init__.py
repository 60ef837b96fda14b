"""Runtimes that execute a model's towers (torch, onnxruntime), apart from model logic."""

from pixseek.sessions.base import TowerSession, select_device

__all__ = ["TowerSession", "select_device"]
