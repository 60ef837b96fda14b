"""The offline demo: synthetic images, a tiny CLIP factory and the shipped demo model."""
