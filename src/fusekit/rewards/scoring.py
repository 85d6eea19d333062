"""Scoring (prompt, response) pairs with reward models.

Loaders (``reward_models.<name>.loader``), after FORMATS.md:

``sequence_classification``
    ``AutoModelForSequenceClassification``, one logit (FsfairX, the tiny world);
    input: the RM tokenizer's chat prompt, the response and EOS.
``armorm``
    ArmoRM (remote code): ``output.score`` over the full chat template.
``eurus``
    Eurus-RM-7b (remote code): ``"[INST] {prompt} [\\INST] {response}"``.
``starling``
    Starling-RM-7B-alpha: Llama-2-7b-chat trunk plus a linear value head read
    at the last token, Llama-2 chat format.

Only ``sequence_classification`` runs here (the tiny world); the other three
need hub weights and a GPU and are untested on CPU.
"""

from __future__ import annotations

import logging

import pandas as pd
import torch
from tqdm.auto import tqdm

from fusekit.batching import pad_right
from fusekit.chat import encode_example, use_chat_template
from fusekit.checks import (
    DataError,
    check_finite,
    check_not_empty,
    check_prompt_ids,
    check_text,
    read_checked_table,
)
from fusekit.generation import read_generations
from fusekit.io import write_table

SCORE_COLUMNS = (
    "prompt_id",
    "model",
    "sample",
    "reward_model",
    "score",
    "truncated",
    "n_input_tokens",
)
log = logging.getLogger("fusekit")


def read_scores(path: str, columns=SCORE_COLUMNS) -> pd.DataFrame:
    """Read a score file and check it where it enters a stage: ``columns``, at least one
    row, prompt ids present, ``model`` and ``reward_model`` text, every ``score`` a
    finite number or ``-inf`` (an unusable response; NaN and ``+inf`` are errors, since
    ``+inf`` would win every vote), and no (prompt_id, model, sample, reward_model)
    twice. Raises :class:`fusekit.checks.DataError` naming the file, row and column."""
    df = read_checked_table(path, columns)
    check_not_empty(df, path, "scores")
    check_prompt_ids(df, path, unique=False)
    check_text(df, [c for c in ("model", "reward_model") if c in df.columns], path)
    rm = df["reward_model"].astype(str) if "reward_model" in df.columns else None
    check_finite(df, "score", path, allow_neg_inf=True, context=("model", "sample", "reward_model"))
    key = [c for c in ("prompt_id", "model", "sample", "reward_model") if c in df.columns]
    dup = df.duplicated(key).to_numpy()
    if dup.any():
        i = int(dup.argmax())
        by = f" by reward model {rm.iloc[i]!r}" if rm is not None else ""
        raise DataError(
            f"{path}: row {i} (prompt_id {df.prompt_id.iloc[i]!r}) scores response "
            f"{df.model.iloc[i]}/{df['sample'].iloc[i]}{by} a second time"
        )
    return df


class RewardScorer:
    """A loaded reward model that maps (prompt, response) pairs to scalars."""

    def __init__(self, path: str, spec: dict, threads: int = 1):
        from transformers import AutoTokenizer

        torch.set_num_threads(threads)
        self.loader = spec.get("loader", "sequence_classification")
        self.max_length = spec.get("max_length", 2048)
        self.batch_size = spec.get("batch_size", 8)
        remote = spec.get("trust_remote_code", False)
        if self.loader == "eurus" and not remote:
            raise ValueError(
                f"{path}: the eurus loader runs the model's own code (AutoModel with remote "
                "code); set trust_remote_code: true for this reward model to allow it"
            )
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = torch.bfloat16 if self.device == "cuda" else torch.float32
        tok_path = "meta-llama/Llama-2-7b-chat-hf" if self.loader == "starling" else path
        self.tokenizer = AutoTokenizer.from_pretrained(tok_path, trust_remote_code=remote)
        use_chat_template(self.tokenizer, spec.get("chat_template"))
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.unk_token or self.tokenizer.eos_token
        if self.loader in ("sequence_classification", "armorm"):
            from transformers import AutoModelForSequenceClassification

            self.model = AutoModelForSequenceClassification.from_pretrained(
                path, dtype=dtype, trust_remote_code=remote
            )
            self.model.config.pad_token_id = self.tokenizer.pad_token_id
        elif self.loader == "eurus":
            from transformers import AutoModel

            self.model = AutoModel.from_pretrained(path, dtype=dtype, trust_remote_code=remote)
        elif self.loader == "starling":
            self.model = _starling(path, dtype)
        else:
            raise ValueError(f"unknown reward-model loader {self.loader!r}")
        self.model.to(self.device).eval()

    def encode(self, prompt: str, response: str) -> list[int]:
        tok = self.tokenizer
        if self.loader == "sequence_classification":
            return encode_example(tok, prompt, response).input_ids
        if self.loader == "eurus":
            return tok(f"[INST] {prompt} [\\INST] {response}").input_ids
        if self.loader == "starling":
            return tok(
                f"<s>[INST] {prompt} </s> [/INST] {response}</s>", add_special_tokens=False
            ).input_ids
        chat = [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]
        return tok.apply_chat_template(chat, tokenize=True, return_dict=False)

    @torch.inference_mode()
    def _forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        out = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device))
        if self.loader == "armorm":
            return out.score[:, 0].float().cpu()
        if self.loader in ("eurus", "starling"):
            return (
                (out if isinstance(out, torch.Tensor) else out[0])
                .reshape(len(ids), -1)[:, 0]
                .float()
                .cpu()
            )
        return out.logits[:, 0].float().cpu()

    def score(self, prompts: list[str], responses: list[str], desc: str = "score"):
        """Scores, a truncation flag per pair (cut from the left to ``max_length``)
        and the untruncated input lengths."""
        encoded = [self.encode(p, r) for p, r in zip(prompts, responses, strict=True)]
        lengths = [len(e) for e in encoded]
        truncated = [n > self.max_length for n in lengths]
        encoded = [e[-self.max_length :] for e in encoded]
        scores: list[float] = []
        pad = self.tokenizer.pad_token_id
        for i in tqdm(range(0, len(encoded), self.batch_size), desc=desc, mininterval=5):
            # right padding: the score is read at the last real token
            ids, mask, _ = pad_right(encoded[i : i + self.batch_size], pad)
            scores.extend(self._forward(ids, mask).tolist())
        return scores, truncated, lengths


def _starling(path: str, dtype):  # pragma: no cover - paper scale, needs the gated Llama-2 weights
    import glob
    import os

    from huggingface_hub import snapshot_download
    from transformers import AutoModelForCausalLM

    class StarlingRM(torch.nn.Module):
        def __init__(self):
            super().__init__()
            base = AutoModelForCausalLM.from_pretrained(
                "meta-llama/Llama-2-7b-chat-hf", dtype=dtype
            )
            self.transformer = base.model
            self.v_head = torch.nn.Linear(base.config.hidden_size, 1, bias=False)

        def forward(self, input_ids, attention_mask):
            hidden = self.transformer(
                input_ids=input_ids, attention_mask=attention_mask
            ).last_hidden_state
            last = attention_mask.sum(1) - 1
            return self.v_head(hidden[torch.arange(len(last)), last])

    model = StarlingRM()
    folder = snapshot_download(path)
    ckpt = [f for f in glob.glob(os.path.join(folder, "*")) if f.endswith((".pt", "model.bin"))][0]
    model.load_state_dict(torch.load(ckpt, map_location="cpu"), strict=False)
    return model.to(dtype)


def score_responses(
    reward_model: str,
    rm_path: str,
    rm_spec: dict,
    generations_path: str,
    out: str,
    empty: str = "error",
    threads: int = 1,
) -> pd.DataFrame:
    """Score every response in one generations file with one reward model; write ``out``.

    Empty responses are an error, or (``empty == 'lowest'``) get ``-inf`` without a
    forward pass. Truncations are counted in the ``truncated`` column and logged.
    """
    gens = read_generations(generations_path, empty)
    scorer = RewardScorer(rm_path, rm_spec, threads)
    blank = (gens.response.str.strip() == "").to_numpy()
    todo = gens[~blank]
    scores, truncated, lengths = scorer.score(
        list(todo.prompt), list(todo.response), f"score {reward_model}"
    )
    df = gens[["prompt_id", "model", "sample"]].copy()
    df["reward_model"] = reward_model
    df["score"] = float("-inf")
    df["truncated"] = False
    df["n_input_tokens"] = 0
    df.loc[~blank, "score"] = scores
    df.loc[~blank, "truncated"] = truncated
    df.loc[~blank, "n_input_tokens"] = lengths
    # a reward model that overflowed (half precision, say) must not write NaN / +inf
    check_finite(
        df.reset_index(drop=True),
        "score",
        f"{generations_path} (scored by {reward_model})",
        allow_neg_inf=True,
        context=("model", "sample"),
    )
    n_cut = int(df.truncated.sum())
    log.info(
        "%s scored %d responses of %s; %d truncated to %d tokens; %d empty",
        reward_model,
        len(df),
        generations_path,
        n_cut,
        scorer.max_length,
        int(blank.sum()),
    )
    write_table(df[list(SCORE_COLUMNS)], out)
    return df
