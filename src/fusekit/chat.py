"""Turning (prompt, response) pairs into token ids with a model's own chat template.

One convention for every stage (training, generation, reward scoring, logit
dumps): the prompt is the chat template rendered with the generation prompt,
and the response is tokenized on its own and followed by EOS. Generation
produces exactly such a continuation, so what a model is trained on and what
it generates line up token for token.
"""

from __future__ import annotations

from dataclasses import dataclass

# Chat templates in the styles of the paper-scale sources (FORMATS.md).
CHAT_TEMPLATES: dict[str, str] = {
    # FastChat vicuna_v1.1: "{system} USER: {q} ASSISTANT: {a}</s>"
    "vicuna": (
        "{{ bos_token }}{% for m in messages %}"
        "{% if m['role'] == 'system' %}{{ m['content'] }} "
        "{% elif m['role'] == 'user' %}USER: {{ m['content'] }} "
        "{% elif m['role'] == 'assistant' %}ASSISTANT: {{ m['content'] }}{{ eos_token }}"
        "{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
    ),
    # Llama-2-chat: "<s>[INST] {q} [/INST] {a} </s>"
    "llama2": (
        "{% for m in messages %}"
        "{% if m['role'] == 'user' %}{{ bos_token }}[INST] {{ m['content'] }} [/INST]"
        "{% elif m['role'] == 'assistant' %} {{ m['content'] }} {{ eos_token }}"
        "{% endif %}{% endfor %}"
    ),
    # ChatML (mpt-7b-8k-chat, Qwen)
    "chatml": (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
        "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    ),
}


def use_chat_template(tokenizer, name: str | None) -> None:
    """Give ``tokenizer`` the named template (for models whose hub tokenizer has none,
    such as vicuna-7b-v1.5); ``None`` keeps the tokenizer's own."""
    if name is None:
        return
    if name not in CHAT_TEMPLATES:
        raise ValueError(f"unknown chat template {name!r}; known: {sorted(CHAT_TEMPLATES)}")
    tokenizer.chat_template = CHAT_TEMPLATES[name]


@dataclass(frozen=True)
class Encoded:
    input_ids: list[int]
    n_prompt: int  # the first n_prompt ids are the prompt; the rest is the response + EOS


def render_prompt(tokenizer, prompt: str, system: str | None = None) -> str:
    """The prompt text as the model sees it, ending where the response starts."""
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": prompt})
    if tokenizer.chat_template is None:
        raise ValueError(
            f"tokenizer {getattr(tokenizer, 'name_or_path', '?')!r} has no chat template; "
            "set one in the model's config entry (chat_template)"
        )
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def encode_prompt(tokenizer, prompt: str, system: str | None = None) -> list[int]:
    return tokenizer(render_prompt(tokenizer, prompt, system), add_special_tokens=False)[
        "input_ids"
    ]


def encode_example(tokenizer, prompt: str, response: str, system: str | None = None) -> Encoded:
    """Prompt ids followed by response ids and EOS."""
    p = encode_prompt(tokenizer, prompt, system)
    r = tokenizer(response, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    return Encoded(p + r, len(p))
