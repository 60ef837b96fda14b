"""Separate text towers from sentence-transformers checkpoints, aligned to an image tower's
space (the multilingual CLIP pattern: a multilingual text encoder distilled into CLIP's space)."""
