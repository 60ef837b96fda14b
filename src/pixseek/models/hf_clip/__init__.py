"""The transformers CLIP family (CLIP, SigLIP, ...): loading, processor policy, builders."""
