"""Load a transformers checkpoint by hub id or local directory through one call.

``from_pretrained`` already accepts both; this module only turns its many failure
modes (offline, missing directory, broken files) into one clear
:class:`ModelLoadError` that tells the user what to do.
"""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from typing import Any

from pixseek.core.errors import ModelLoadError


def _looks_like_path(name: str) -> bool:
    return name.startswith(("/", ".", "~")) or name.count("/") > 1 or "\\" in name


def _explain(name: str, exc: Exception) -> ModelLoadError:
    if _looks_like_path(name) and not Path(name).expanduser().exists():
        return ModelLoadError(f"model directory {name!r} does not exist")
    if Path(name).expanduser().is_dir():
        return ModelLoadError(
            f"{name!r} is not a loadable model directory (it needs config.json, the weights "
            f"and the processor files written by save_pretrained): {exc}"
        )
    return ModelLoadError(
        f"could not load model {name!r}: it is not a local directory and it could not be "
        "fetched from the Hugging Face Hub (no network, or not in the local cache). "
        "Download it once on a machine with network access, or pass --model /path/to/dir "
        "pointing at a directory saved with save_pretrained."
    )


def _hub_reachable(timeout: float = 3.0) -> bool:
    from urllib.parse import urlparse

    from huggingface_hub import constants

    endpoint = urlparse(constants.ENDPOINT)
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        socket.create_connection((endpoint.hostname or "", port), timeout=timeout).close()
    except OSError:
        return False
    return True


def pretrained_kwargs(name: str) -> dict[str, Any]:
    """How to call ``from_pretrained`` for ``name`` without waiting on an absent network.

    A cached hub model loads from the cache alone; an uncached one with the hub
    unreachable fails at once with the usual advice, instead of minutes of retries.
    """
    if Path(name).expanduser().is_dir():
        return {}
    from huggingface_hub import constants, try_to_load_from_cache

    try:
        cached = try_to_load_from_cache(name, "config.json")
    except Exception:  # not a valid repo id: let from_pretrained explain
        return {}
    if isinstance(cached, str):
        return {"local_files_only": True}
    if constants.HF_HUB_OFFLINE or not _hub_reachable():
        raise _explain(name, OSError("offline"))
    return {}


def _quiet_transformers() -> None:
    """Library code shows no progress bars or warnings of its own dependencies."""
    logging.getLogger("transformers").setLevel(logging.ERROR)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def load_processor(name: str) -> Any:
    from transformers import AutoProcessor

    _quiet_transformers()
    try:
        return AutoProcessor.from_pretrained(name, **pretrained_kwargs(name))
    except ModelLoadError:
        raise
    except Exception as exc:  # transformers raises OSError, ValueError, hub errors...
        raise _explain(name, exc) from exc


def load_model(name: str) -> Any:
    from transformers import AutoModel

    _quiet_transformers()
    try:
        model = AutoModel.from_pretrained(name, **pretrained_kwargs(name))
    except ModelLoadError:
        raise
    except Exception as exc:
        raise _explain(name, exc) from exc
    for method in ("get_image_features", "get_text_features"):
        if not hasattr(model, method):
            raise ModelLoadError(
                f"model {name!r} ({type(model).__name__}) is not a CLIP-family model: "
                f"it has no {method}()"
            )
    return model


def embedding_dim(config: Any) -> int:
    projection = getattr(config, "projection_dim", None)
    if projection:
        return int(projection)
    return int(config.text_config.hidden_size)
