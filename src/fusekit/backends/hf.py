"""The transformers backend: batched generation with left padding and a KV cache."""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from fusekit.backends import Completion, SamplingParams
from fusekit.batching import pad_left, pad_right
from fusekit.chat import encode_prompt, use_chat_template


def _completion(tokenizer, row: list[int]) -> Completion:
    eos = tokenizer.eos_token_id
    if eos in row:
        row, reason = row[: row.index(eos)], "stop"
    else:
        reason = "length"
        while row and row[-1] == tokenizer.pad_token_id:
            row = row[:-1]
    text = tokenizer.decode(row, skip_special_tokens=True).strip()
    return Completion(text, len(row), reason)


@torch.inference_mode()
def generate_ids(
    model,
    tokenizer,
    encoded: list[list[int]],
    params: SamplingParams,
    desc: str = "generate",
) -> list[list[Completion]]:
    """Generate from already-encoded prompts; ``samples_per_prompt`` completions each.

    Sampling draws from torch's global generator, seeded with ``params.seed``
    once here, so a run is repeatable for a fixed batch size.
    """
    torch.manual_seed(params.seed)
    out: list[list[Completion]] = []
    n = params.samples_per_prompt
    kwargs = {"do_sample": not params.greedy}
    if not params.greedy:
        kwargs.update(temperature=params.temperature, top_p=params.top_p, num_return_sequences=n)
    if params.repetition_penalty != 1.0:
        kwargs["repetition_penalty"] = params.repetition_penalty
    for start in tqdm(range(0, len(encoded), params.batch_size), desc=desc, mininterval=5):
        ids, mask = pad_left(encoded[start : start + params.batch_size], tokenizer.pad_token_id)
        seqs = model.generate(
            input_ids=ids,
            attention_mask=mask,
            max_new_tokens=params.max_new_tokens,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            **kwargs,
        )[:, ids.shape[1] :].tolist()
        for i in range(ids.shape[0]):
            out.append(
                [_completion(tokenizer, seqs[i * n + j] if n > 1 else seqs[i]) for j in range(n)]
            )
    return out


def generate(
    model,
    tokenizer,
    prompts: list[str],
    max_new_tokens: int,
    batch_size: int = 64,
    desc: str = "generate",
) -> list[dict]:
    """Greedy decoding, one response per prompt (the tiny world's evaluation)."""
    params = SamplingParams(max_new_tokens=max_new_tokens, batch_size=batch_size)
    encoded = [encode_prompt(tokenizer, p) for p in prompts]
    return [
        {"response": c[0].response, "n_tokens": c[0].n_tokens, "finish_reason": c[0].finish_reason}
        for c in generate_ids(model, tokenizer, encoded, params, desc)
    ]


def context_length(model) -> int:
    cfg = model.config
    for key in ("max_position_embeddings", "max_seq_len", "n_positions", "seq_length"):
        if getattr(cfg, key, None):
            return int(getattr(cfg, key))
    raise ValueError(f"cannot tell the context length of {type(model).__name__}")


def load_tokenizer(path: str, model_spec: dict):
    """A model's tokenizer with its configured chat template and a pad token."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(
        path, trust_remote_code=model_spec.get("trust_remote_code", False)
    )
    use_chat_template(tok, model_spec.get("chat_template"))
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


def load_causal_lm(path: str, model_spec: dict, threads: int = 1):
    """The model in eval mode: float32 on CPU, the configured dtype on a GPU."""
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(threads)
    cuda = torch.cuda.is_available()
    dtype = getattr(torch, model_spec.get("dtype", "bfloat16")) if cuda else torch.float32
    model = AutoModelForCausalLM.from_pretrained(
        path, dtype=dtype, trust_remote_code=model_spec.get("trust_remote_code", False)
    ).eval()
    return model.to("cuda") if cuda else model


class HFGenerator:
    """:class:`fusekit.backends.Generator` over ``transformers``."""

    def __init__(self, path: str, model_spec: dict, threads: int = 1):
        self.tokenizer = load_tokenizer(path, model_spec)
        self.tokenizer.padding_side = "left"
        self.model = load_causal_lm(path, model_spec, threads)
        self.context_length = context_length(self.model)
        self.system_prompt = model_spec.get("system_prompt")
        self._encoded: dict[tuple, list[int]] = {}

    def _encode(self, prompt: str, system: str | None) -> list[int]:
        key = (prompt, system)
        if key not in self._encoded:
            self._encoded[key] = encode_prompt(self.tokenizer, prompt, system or self.system_prompt)
        return self._encoded[key]

    def prompt_lengths(self, prompts, systems):
        return [len(self._encode(p, s)) for p, s in zip(prompts, systems, strict=True)]

    def generate(self, prompts, systems, params):
        encoded = [self._encode(p, s) for p, s in zip(prompts, systems, strict=True)]
        room = self.context_length - max(map(len, encoded))
        params = SamplingParams(
            **{**params.__dict__, "max_new_tokens": min(params.max_new_tokens, room)}
        )
        return generate_ids(self.model, self.tokenizer, encoded, params)


@torch.inference_mode()
def teacher_forced_topk(
    model,
    tokenizer,
    examples,
    k: int,
    top_p: float,
    temperature: float,
    batch_size: int = 16,
    max_length: int | None = None,
    desc: str = "dump",
):
    """Per example (an :class:`fusekit.chat.Encoded`): response ids, the top-k of the
    distribution predicting each, and the mean cross-entropy of the response.

    Yields ``(token_ids, topk_ids, topk_logprobs, ce)``, ``ce`` the mean
    cross-entropy (:func:`fusekit.losses.mean_cross_entropy`). Raises ValueError
    for an example longer than ``max_length`` (callers drop those first:
    :func:`fusekit.logits.fits`).
    """
    from fusekit.logits import fits, topk_of_logits
    from fusekit.losses import mean_cross_entropy

    pad = tokenizer.pad_token_id
    for start in tqdm(range(0, len(examples), batch_size), desc=desc, mininterval=5):
        chunk = examples[start : start + batch_size]
        seqs = [e.input_ids for e in chunk]
        for e in chunk:
            if not fits(len(e.input_ids), max_length) or len(e.input_ids) <= e.n_prompt:
                raise ValueError(
                    f"example of {len(e.input_ids)} tokens ({e.n_prompt} prompt) does not fit "
                    f"max_length {max_length} with a response"
                )
        ids, mask, _ = pad_right(seqs, pad)
        logits = (
            model(input_ids=ids.to(model.device), attention_mask=mask.to(model.device))
            .logits.float()
            .cpu()
        )
        for i, (e, s) in enumerate(zip(chunk, seqs, strict=True)):
            rows = logits[i, e.n_prompt - 1 : len(s) - 1]  # row t predicts response token t
            targets = torch.tensor(s[e.n_prompt :])
            top_ids, top_lp = topk_of_logits(rows, k, top_p, temperature)  # checks finiteness
            ce = mean_cross_entropy(rows, targets)
            yield s[e.n_prompt :], top_ids, top_lp, ce
