"""Build CLIP checkpoints from scratch: a BPE tokenizer trained on a corpus and a
randomly initialised model of any size, saved with ``save_pretrained``.

Used to start training a small domain model with no pretrained download, and
to build the small models that tests and benchmarks load through the same
``--model DIR`` path users use.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BASE_WORDS = (
    "a an the of on in at to with and or photo picture image of by near left right top bottom "
    "middle center small large big tiny huge red green blue yellow orange purple pink white "
    "black gray grey brown dark light circle square triangle star cross ring stripe dot "
    "person people man woman child dog cat horse bird car bus truck taxi bicycle motorcycle "
    "train boat airplane street road city building tree grass sky water food pizza table "
    "chair bed cup bottle phone laptop book clock kitchen room outside inside waiting cross "
    "crossing pedestrians cars taxis standing sitting walking one two three many several"
)


@dataclass(frozen=True, slots=True)
class ClipShape:
    """Tower sizes; the defaults give a model of a few hundred KB for tests."""

    hidden: int = 32
    intermediate: int = 64
    layers: int = 2
    heads: int = 2
    vision_hidden: int = 32
    vision_intermediate: int = 64
    vision_layers: int = 2
    vision_heads: int = 2
    image_size: int = 32
    patch_size: int = 8
    projection_dim: int = 16
    max_text_length: int = 32

    @classmethod
    def vit_b32(cls) -> ClipShape:
        """The geometry of openai/clip-vit-base-patch32 (``CLIPConfig()`` defaults)."""
        return cls(512, 2048, 12, 8, 768, 3072, 12, 12, 224, 32, 512, 77)


SPECIALS = ("<|pad|>", "<|unk|>", "<|startoftext|>", "<|endoftext|>")


def train_tokenizer(corpus: Iterable[str], vocab_size: int = 1000, max_length: int = 77) -> Any:
    """A lower-casing word-level BPE with CLIP's start/end tokens, as a transformers tokenizer."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    pad, unk, bos, eos = SPECIALS
    tokenizer = Tokenizer(models.BPE(unk_token=unk))
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=list(SPECIALS), show_progress=False
    )
    tokenizer.train_from_iterator([BASE_WORDS, *corpus], trainer)
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        special_tokens=[(bos, tokenizer.token_to_id(bos)), (eos, tokenizer.token_to_id(eos))],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=bos,
        eos_token=eos,
        pad_token=pad,
        unk_token=unk,
        model_max_length=max_length,
    )


def build_clip(
    out_dir: Path, shape: ClipShape = ClipShape(), corpus: Iterable[str] = (), seed: int = 0
) -> Path:
    """Write a randomly initialised CLIP with its processor to ``out_dir``."""
    import torch
    from transformers import CLIPConfig, CLIPModel, CLIPProcessor
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    tokenizer = train_tokenizer(corpus, max_length=shape.max_text_length)
    config = CLIPConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": shape.hidden,
            "intermediate_size": shape.intermediate,
            "num_hidden_layers": shape.layers,
            "num_attention_heads": shape.heads,
            "max_position_embeddings": shape.max_text_length,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        },
        vision_config={
            "hidden_size": shape.vision_hidden,
            "intermediate_size": shape.vision_intermediate,
            "num_hidden_layers": shape.vision_layers,
            "num_attention_heads": shape.vision_heads,
            "image_size": shape.image_size,
            "patch_size": shape.patch_size,
        },
        projection_dim=shape.projection_dim,
    )
    from pixseek.models.hf_clip.loading import _quiet_transformers

    _quiet_transformers()
    torch.manual_seed(seed)
    model = CLIPModel(config)
    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": shape.image_size},
        crop_size={"height": shape.image_size, "width": shape.image_size},
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(out_dir)
    return out_dir


def build_text_tower(
    out_dir: Path, dim: int, corpus: Iterable[str] = (), hidden: int = 32, seed: int = 0
) -> Path:
    """A randomly initialised sentence-transformers text encoder giving ``dim``-d vectors:
    a small BERT, mean pooling and a linear projection, saved as sentence-transformers does."""
    import sentence_transformers.models as models
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import BertConfig, BertModel

    from pixseek.models.hf_clip.loading import _quiet_transformers

    _quiet_transformers()
    tokenizer = train_tokenizer(corpus, max_length=32)
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=hidden * 2,
        max_position_embeddings=32,
        pad_token_id=tokenizer.pad_token_id,
    )
    encoder_dir = out_dir / "encoder"
    encoder_dir.mkdir(parents=True, exist_ok=True)
    BertModel(config).save_pretrained(encoder_dir)
    tokenizer.save_pretrained(encoder_dir)
    word = models.Transformer(str(encoder_dir), max_seq_length=32)
    measure = getattr(word, "get_embedding_dimension", None) or word.get_word_embedding_dimension
    pooling = models.Pooling(measure(), "mean")
    dense = models.Dense(hidden, dim, activation_function=torch.nn.Identity())
    model = SentenceTransformer(modules=[word, pooling, dense], device="cpu")
    model.save(str(out_dir / "model"))
    return out_dir / "model"
