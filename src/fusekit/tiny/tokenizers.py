"""Tokenizers of the tiny world, trained with the ``tokenizers`` library.

They differ on purpose, like the paper-scale sources do:

``byte_bpe``
    byte-level BPE with the ``Ġ`` space marker (GPT-NeoX / MPT / Qwen style);
``metaspace_bpe``
    BPE over a Metaspace ``▁`` pre-tokenizer with byte-fallback tokens
    ``<0x..>`` (Llama / Vicuna SentencePiece style);

and the tiny config adds vocabulary size and chat template as further axes
(two byte-level BPEs of different sizes behave differently under alignment).
The ``tokenizers`` Unigram trainer was tried and left out: on a corpus this
small it keeps mostly single characters.

Each is wrapped in :class:`transformers.PreTrainedTokenizerFast` with special
tokens and a chat template, and saved with ``save_pretrained`` so that every
later stage reads it with ``AutoTokenizer.from_pretrained`` exactly as it
reads a hub tokenizer.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from fusekit.chat import CHAT_TEMPLATES

KINDS = ("byte_bpe", "metaspace_bpe")

# Special tokens per chat style: (bos, eos, unk, pad).
_SPECIALS: dict[str, dict[str, str]] = {
    "vicuna": {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"},
    "llama2": {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"},
    "chatml": {
        "bos_token": "<|endoftext|>",
        "eos_token": "<|im_end|>",
        "unk_token": "<|endoftext|>",
        "pad_token": "<|pad|>",
    },
}
_EXTRA_SPECIALS = {"chatml": ["<|im_start|>"]}


def _special_list(chat_template: str) -> list[str]:
    names = _SPECIALS[chat_template]
    ordered = []
    for tok in [names["pad_token"], names["bos_token"], names["eos_token"], names["unk_token"]]:
        if tok not in ordered:
            ordered.append(tok)
    return ordered + _EXTRA_SPECIALS.get(chat_template, [])


def template_texts(chat_template: str) -> list[str]:
    """Literal pieces of a chat template, prefixed to every training line so
    that the template's words are as frequent as they are in chat data."""
    return {
        "vicuna": ["USER: ASSISTANT:"],
        "llama2": ["[INST] [/INST]"],
        "chatml": ["user\nassistant\n"],
    }[chat_template]


def train_tokenizer(
    texts: Iterable[str], kind: str, vocab_size: int, chat_template: str
) -> PreTrainedTokenizerFast:
    """Train one tokenizer of ``kind`` on ``texts`` and wrap it for transformers."""
    if kind not in KINDS:
        raise ValueError(f"unknown tokenizer kind {kind!r}; known: {list(KINDS)}")
    if chat_template not in CHAT_TEMPLATES:
        raise ValueError(
            f"unknown chat template {chat_template!r}; known: {sorted(CHAT_TEMPLATES)}"
        )
    specials = _special_list(chat_template)
    names = _SPECIALS[chat_template]
    marker = template_texts(chat_template)[0]
    lines = [f"{marker} {t}" for t in texts]

    if kind == "byte_bpe":
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=specials,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
    elif kind == "metaspace_bpe":
        tok = Tokenizer(models.BPE(unk_token=names["unk_token"], byte_fallback=True))
        tok.normalizer = normalizers.NFKC()
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
        tok.decoder = decoders.Sequence(
            [decoders.ByteFallback(), decoders.Metaspace(replacement="▁", prepend_scheme="first")]
        )
        byte_tokens = [f"<0x{b:02X}>" for b in range(256)]
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size, special_tokens=specials + byte_tokens, show_progress=False
        )
    tok.train_from_iterator(lines, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        chat_template=CHAT_TEMPLATES[chat_template],
        model_max_length=512,
        padding_side="left",
        **names,
        **(
            {"additional_special_tokens": _EXTRA_SPECIALS[chat_template]}
            if chat_template in _EXTRA_SPECIALS
            else {}
        ),
    )
