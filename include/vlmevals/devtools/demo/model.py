"""A tiny, deterministic Idefics3 model that VLMEvalKit's ``DOCLING`` wrapper loads and runs on CPU.

No weights can be downloaded, yet the service's whole path (VLMEvalKit subprocess, inference, scoring,
result files) must run for real in demos and tests. So we build a randomly initialised Idefics3 (one layer,
~50k parameters, a BPE tokenizer trained locally, 32 px images, 4 image tokens) from fixed seeds in seconds.
Its answers are chance-level, but they are real generations: the lm_head rows of the answer words are
amplified so that predictions are letters, colours, shapes or yes/no (non-trivial, in-range scores).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vlmevals.devtools.demo.benchmark import COLOURS, LETTERS, SHAPES

MARKER = ".vlmevals-demo-model.json"
BUILD_VERSION = 2  # bump to force rebuilding models already on disk
SEED = 25  # picked among 1..60 so that all three demo benchmarks score above zero at n=20
IMAGE_SIZE = 32
PATCH_SIZE = 8  # (32/8)^2 = 16 patches, pixel shuffle by 2 -> 4 image tokens
IMAGE_SEQ_LEN = 4
MAX_NEW_TOKENS = 1  # one answer word: fast, and unambiguous for exact matching

SPECIAL_TOKENS = [
    "<unk>",
    "<pad>",
    "<|endoftext|>",
    "<|im_start|>",
    "<end_of_utterance>",
    "<fake_token_around_image>",
    "<image>",
    "<global-img>",
]
ANSWER_WORDS = [*LETTERS, "yes", "no", "Yes", "No", *COLOURS, *SHAPES]

# Same structure as the Idefics3/SmolVLM chat template, so DOCLING's apply_chat_template call works.
CHAT_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{ message['role'] | capitalize }}"
    "{% if message['content'][0]['type'] == 'image' %}{{ ':' }}{% else %}{{ ': ' }}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{ line['text'] }}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>\n"
    "{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)


@dataclass(frozen=True)
class Recipe:
    """Sizes of the built model; the defaults are the random demo model, the trainer builds a larger one."""

    hidden: int = 32
    layers: int = 1
    heads: int = 2
    spaced_words: bool = False  # also teach the tokenizer " word" forms, so each answer is one token

    def corpus(self) -> list[str]:
        extra = [" " + " ".join(ANSWER_WORDS)] * 8 if self.spaced_words else []
        return _corpus() + extra


def _corpus() -> list[str]:
    """Text the tokenizer is trained on: VLMEvalKit's prompt phrases plus the demo vocabulary."""
    words = " ".join(ANSWER_WORDS)
    return [
        "User: Question: What colour is the shape? Which shape is shown? What shape is shown?",
        "Options: A. red B. green C. blue D. yellow Please select the correct answer from the options above.",
        "Hint: Answer the question using a single word or phrase. Is the shape a circle? Please answer yes or no.",
        "Assistant: Answer with the letter. Give a very brief answer.",
        words,
        words.upper(),
    ] * 4


def _fingerprint() -> str:
    """Identifies the recipe: a different source or library version must not reuse an old build."""
    import tokenizers
    import torch
    import transformers

    h = hashlib.sha256(Path(__file__).read_bytes())
    h.update(Path(__file__).with_name("benchmark.py").read_bytes())
    h.update(f"{BUILD_VERSION}|{torch.__version__}|{transformers.__version__}|{tokenizers.__version__}".encode())
    return h.hexdigest()[:16]


def _build_tokenizer(corpus: list[str]) -> Any:
    """A byte-level BPE tokenizer trained on ``_corpus`` (deterministic for a given input)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="<unk>",
        pad_token="<pad>",
        bos_token="<|im_start|>",
        eos_token="<end_of_utterance>",
        additional_special_tokens=["<fake_token_around_image>", "<image>", "<end_of_utterance>"],
        model_max_length=2048,
        # Saved in tokenizer_config.json; without it the tokenizer emits token_type_ids, which
        # Idefics3's generate() rejects.
        model_input_names=["input_ids", "attention_mask"],
    )
    return fast


def _answer_token_ids(tokenizer: Any) -> list[int]:
    """Single tokens that spell an answer word, with and without a leading space."""
    ids: set[int] = set()
    for word in ANSWER_WORDS:
        for text in (word, " " + word):
            enc = tokenizer(text, add_special_tokens=False)["input_ids"]
            if len(enc) == 1:
                ids.add(enc[0])
    return sorted(ids)


def _build_into(tmp: Path) -> None:
    model, processor = build_untrained(Recipe())
    model.save_pretrained(tmp, safe_serialization=True)
    processor.save_pretrained(tmp)


def build_untrained(recipe: Recipe) -> tuple[Any, Any]:
    """The seeded, answer-word-biased model and its processor (not saved; the caller runs single-threaded)."""
    import torch
    from transformers import Idefics3ForConditionalGeneration, Idefics3ImageProcessor, Idefics3Processor

    tokenizer = _build_tokenizer(recipe.corpus())
    image_processor = Idefics3ImageProcessor(
        do_image_splitting=False,
        size={"longest_edge": IMAGE_SIZE},
        max_image_size={"longest_edge": IMAGE_SIZE},
    )
    processor = Idefics3Processor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        image_seq_len=IMAGE_SEQ_LEN,
        chat_template=CHAT_TEMPLATE,
    )
    tokenizer = processor.tokenizer  # type: ignore[attr-defined]  # set at run time by ProcessorMixin
    config = _config(recipe, tokenizer)
    torch.manual_seed(SEED)
    model = Idefics3ForConditionalGeneration(config).eval()
    _bias_to_answers(model, tokenizer)
    model.generation_config.max_new_tokens = MAX_NEW_TOKENS
    model.generation_config.do_sample = False
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model, processor


def _config(recipe: Recipe, tokenizer: Any) -> Any:
    from transformers import Idefics3Config

    vocab = len(tokenizer)
    return Idefics3Config(
        vision_config={
            "hidden_size": recipe.hidden,
            "intermediate_size": 2 * recipe.hidden,
            "num_hidden_layers": recipe.layers,
            "num_attention_heads": recipe.heads,
            "image_size": IMAGE_SIZE,
            "patch_size": PATCH_SIZE,
        },
        text_config={
            "model_type": "llama",
            "vocab_size": vocab,
            "hidden_size": recipe.hidden,
            "intermediate_size": 2 * recipe.hidden,
            "num_hidden_layers": recipe.layers,
            "num_attention_heads": recipe.heads,
            "num_key_value_heads": recipe.heads,
            "max_position_embeddings": 2048,
            "rms_norm_eps": 1e-5,
            "tie_word_embeddings": False,
            "pad_token_id": tokenizer.pad_token_id,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
        },
        scale_factor=2,
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=False,
    )


def _bias_to_answers(model: Any, tokenizer: Any) -> None:
    import torch

    with torch.no_grad():
        head = model.lm_head.weight
        keep = torch.zeros(head.shape[0], dtype=torch.bool)
        keep[_answer_token_ids(tokenizer)] = True
        head[~keep] *= 0.05  # random logits, but dominated by answer words
        head[keep] *= 20.0
        # The prompt always ends in "Assistant:"; with those embeddings zeroed, the last hidden state is
        # driven by attention over the question and image, so answers vary with the input.
        emb = model.get_input_embeddings().weight
        for tid in tokenizer("Assistant:", add_special_tokens=False)["input_ids"]:
            emb[tid] = 0.0


def build_demo_model(out_dir: Path) -> Path:
    """Build the demo model into ``out_dir`` (skipped when its marker says this recipe already built it)."""
    import torch

    out_dir = Path(out_dir)
    fingerprint = _fingerprint()
    marker = out_dir / MARKER
    if marker.exists():
        try:
            if json.loads(marker.read_text()).get("fingerprint") == fingerprint:
                return out_dir
        except (OSError, ValueError):
            pass
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.with_name(f".{out_dir.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)  # bit-identical init regardless of the machine's core count
        _build_into(tmp)
    finally:
        torch.set_num_threads(threads)
    (tmp / MARKER).write_text(json.dumps({"fingerprint": fingerprint, "class": "DOCLING"}) + "\n")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.replace(out_dir)  # readers never see a half-written model
    return out_dir


def DEMO_MODEL_SPEC(path: Path) -> dict[str, Any]:
    """The ``model`` entry of a VLMEvalKit ``--config`` file for the demo model at ``path``."""
    return {"class": "DOCLING", "model_path": str(path), "max_new_tokens": MAX_NEW_TOKENS, "do_sample": False}
