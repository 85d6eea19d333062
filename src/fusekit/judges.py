"""LLM judges behind one interface: an OpenAI-compatible API judge and a local judge.

A judge turns chat requests (lists of ``{"role", "content"}`` messages) into
completions. :meth:`Judge.complete` returns one *choice* dict per request, shaped like
an OpenAI chat-completion choice (``text``, ``message``, ``finish_reason`` and, when asked
for, ``logprobs.content[i].top_logprobs``); :meth:`Judge.judge` returns the texts.
Benchmarks parse what a judge writes with their own parsers (arena-hard's verdict regex,
alpaca_eval's ``logprob_parser``), whichever judge wrote it.

``openai`` (:class:`OpenAIJudge`, paper scale)
    Any OpenAI-compatible endpoint (``base_url``). The key is read from the environment
    variable named by ``api_key_env`` and nowhere else; it is never logged, cached or
    written. Failed calls (HTTP 429 and 5xx, connection errors, timeouts) are retried
    with exponential backoff; other errors stop the run. ``max_calls`` caps the HTTP
    requests this process may send (retries included); cached answers are free. Every
    answer is appended to a JSONL cache, keyed by the SHA-256 of model, messages and
    settings, before the next call, so a rerun after a crash repeats no call.
``local`` (:class:`LocalJudge`, the tiny world)
    A reward model (``AutoModelForSequenceClassification`` through
    :class:`fusekit.rewards.scoring.RewardScorer`) reads the same judge prompts an API
    judge would get, scores both answers to the instruction and writes what an API judge
    would write: an arena-hard verdict label, or the ``m`` / ``M`` token of
    alpaca_eval's weighted annotator with its top log-probabilities.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

log = logging.getLogger("fusekit")


class JudgeBudgetExceeded(RuntimeError):
    """More API calls were needed than ``max_calls`` allows."""


class Judge:
    """Interface: ``complete(requests, **settings) -> list[choice dict]``."""

    name: str = "judge"

    def complete(self, requests: list[list[dict]], **settings) -> list[dict]:
        raise NotImplementedError

    def judge(self, requests: list[list[dict]], **settings) -> list[str]:
        """The completion text of each request, in order."""
        return [c["text"] for c in self.complete(requests, **settings)]


def choice(text: str, logprobs: dict | None = None, finish_reason: str = "stop") -> dict:
    """A choice dict in the OpenAI chat-completion layout (plus alpaca_eval's ``text``)."""
    return {
        "index": 0,
        "finish_reason": finish_reason,
        "message": {"role": "assistant", "content": text},
        "logprobs": logprobs,
        "text": text,
    }


def cache_key(model: str, messages: list[dict], settings: dict) -> str:
    blob = json.dumps(
        {"model": model, "messages": messages, "settings": settings},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(blob.encode()).hexdigest()


class JudgmentCache:
    """Append-only JSONL of ``{"key", "choice"}`` lines. Each line is flushed and synced
    when written; a torn last line (a crash or a full disk mid-write) is skipped when
    loading, and ended with a newline before the next record is appended, so it never
    swallows that record."""

    def __init__(self, path: str | os.PathLike | None):
        self.path = Path(path) if path else None
        self.data: dict[str, dict] = {}
        self.lock = threading.Lock()
        self._torn = False
        if self.path and self.path.exists() and self.path.stat().st_size:
            with open(self.path, "rb") as f:
                f.seek(-1, os.SEEK_END)
                self._torn = f.read(1) != b"\n"
        if self.path and self.path.exists():
            with open(self.path) as f:
                for n, line in enumerate(f, 1):
                    try:
                        rec = json.loads(line)
                        self.data[rec["key"]] = rec["choice"]
                    except (json.JSONDecodeError, KeyError, TypeError):
                        log.warning("%s: skipping unreadable cache line %d", self.path, n)

    def get(self, key: str) -> dict | None:
        return self.data.get(key)

    def put(self, key: str, value: dict) -> None:
        with self.lock:
            self.data[key] = value
            if self.path is None:
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a") as f:
                if self._torn:  # end the torn line first: it stays one unreadable line
                    f.write("\n")
                    self._torn = False
                f.write(json.dumps({"key": key, "choice": value}, ensure_ascii=False) + "\n")
                f.flush()
                os.fsync(f.fileno())


class OpenAIJudge(Judge):
    """A judge behind an OpenAI-compatible chat-completions endpoint (see the module doc).

    ``defaults`` are request settings (``temperature``, ``max_tokens``, ...) that a call's
    own settings override; both enter the cache key. ``parallel`` requests run at once.
    """

    RETRY_STATUS = (408, 409, 429)

    def __init__(
        self,
        model: str,
        api_key_env: str = "OPENAI_API_KEY",
        base_url: str | None = None,
        cache_path: str | os.PathLike | None = None,
        max_calls: int | None = None,
        max_retries: int = 6,
        backoff_s: float = 1.0,
        max_backoff_s: float = 60.0,
        timeout_s: float = 600.0,
        parallel: int = 1,
        defaults: dict | None = None,
        name: str | None = None,
    ):
        import openai

        key = os.environ.get(api_key_env)
        if not key:
            raise RuntimeError(
                f"the judge's API key is read from the environment variable {api_key_env}, "
                "which is not set (pass it with Snakemake envvars:)"
            )
        self.model = model
        self.name = name or model
        self.max_calls = max_calls
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.parallel = max(1, parallel)
        self.defaults = dict(defaults or {})
        self.cache = JudgmentCache(cache_path)
        self.calls = 0
        self._lock = threading.Lock()
        # the client's own retries are off: ours count against max_calls and back off
        self._key = key  # only to redact it from error messages
        self.client = openai.OpenAI(
            api_key=key, base_url=base_url, max_retries=0, timeout=timeout_s
        )

    def _say(self, err) -> str:
        """The error's message without the key; nothing at all for 401 and 403, whose
        messages quote parts of the key."""
        if getattr(err, "status_code", None) in (401, 403):
            return "(authentication failed; message withheld)"
        return str(getattr(err, "message", "")).replace(self._key, "<redacted>")[:500]

    def _take_call(self) -> None:
        with self._lock:
            if self.max_calls is not None and self.calls >= self.max_calls:
                raise JudgeBudgetExceeded(
                    f"judge {self.name}: the cap of {self.max_calls} API calls is reached "
                    f"({len(self.cache.data)} answers cached; rerun with a larger max_calls "
                    "to go on)"
                )
            self.calls += 1

    def _retryable(self, err) -> bool:
        import openai

        if isinstance(err, openai.APIConnectionError | openai.APITimeoutError):
            return True
        if isinstance(err, openai.APIStatusError):
            return err.status_code in self.RETRY_STATUS or err.status_code >= 500
        return False

    def _call(self, messages: list[dict], settings: dict) -> dict:
        import openai

        for attempt in range(self.max_retries + 1):
            self._take_call()
            try:
                resp = self.client.chat.completions.create(
                    model=self.model, messages=messages, **settings
                )
                c = resp.choices[0].model_dump(mode="json")
                c["text"] = c["message"]["content"] or ""
                return c
            except openai.OpenAIError as err:
                if not self._retryable(err) or attempt == self.max_retries:
                    raise RuntimeError(
                        f"judge {self.name}: API call failed after {attempt + 1} attempt(s): "
                        f"{type(err).__name__} {getattr(err, 'status_code', '')} {self._say(err)}"
                    ) from None
                wait = min(self.max_backoff_s, self.backoff_s * 2**attempt)
                log.warning(
                    "judge %s: %s %s; retry %d/%d in %.1f s",
                    self.name,
                    type(err).__name__,
                    getattr(err, "status_code", ""),
                    attempt + 1,
                    self.max_retries,
                    wait,
                )
                time.sleep(wait)
        raise AssertionError("unreachable")

    def _one(self, messages: list[dict], settings: dict) -> dict:
        key = cache_key(self.model, messages, settings)
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        c = self._call(messages, settings)
        self.cache.put(key, c)
        return c

    def complete(self, requests: list[list[dict]], **settings) -> list[dict]:
        settings = {**self.defaults, **settings}
        if self.parallel == 1:
            return [self._one(m, settings) for m in requests]
        with ThreadPoolExecutor(self.parallel) as pool:
            return list(pool.map(lambda m: self._one(m, settings), requests))


# ------------------------------------------------------------------ the local judge

_ARENA = re.compile(
    r"<\|User Prompt\|>\n(?P<q>.*?)\n\n<\|The Start of Assistant A's Answer\|>\n(?P<a>.*?)\n"
    r"<\|The End of Assistant A's Answer\|>\n\n<\|The Start of Assistant B's Answer\|>\n"
    r"(?P<b>.*?)\n<\|The End of Assistant B's Answer\|>",
    re.DOTALL,
)
_ALPACA = re.compile(
    r'"instruction": """(?P<q>.*?)""",\n\}.*?"model_identifier": "m",\s*"output": """(?P<a>.*?)"""'
    r'\n\s*\},\s*\{\s*"model_identifier": "M",\s*"output": """(?P<b>.*?)"""\n\s*\}\n\}',
    re.DOTALL,
)


def _log_sigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x)) if x > -30 else x


class LocalJudge(Judge):
    """A reward model as a judge, for the tiny world (see the module doc).

    It recognises two prompts: arena-hard v0.1's judge prompt, answered with
    ``"My final verdict is ...: [[X]]"`` where, with ``d = score(A) - score(B)``, ``|d| <
    tie`` gives ``A=B``, ``|d| < strong`` a weak and larger ``|d|`` a strong verdict; and
    alpaca_eval's ``alpaca_eval_clf_gpt4_turbo`` prompt (the weighted annotator's), answered
    with the token ``m`` or ``M`` and top log-probabilities ``log P(m) = log
    sigmoid((score(m) - score(M)) / temperature)``. Other prompts are an error.
    """

    def __init__(
        self,
        path: str,
        spec: dict | None = None,
        tie: float = 0.5,
        strong: float = 2.0,
        temperature: float = 1.0,
        threads: int = 1,
        name: str = "local",
    ):
        from fusekit.rewards.scoring import RewardScorer

        if not 0 <= tie <= strong:
            raise ValueError(f"local judge needs 0 <= tie <= strong, got tie={tie} strong={strong}")
        self.scorer = RewardScorer(path, spec or {}, threads)
        self.tie, self.strong, self.temperature = tie, strong, temperature
        self.name = name

    @staticmethod
    def read_prompt(messages: list[dict]) -> tuple[str, str, str, str]:
        """``(kind, instruction, first answer, second answer)`` of a judge prompt."""
        text = "\n".join(m["content"] for m in messages if m["role"] == "user")
        for kind, pattern in (("arena", _ARENA), ("alpaca", _ALPACA)):
            m = pattern.search(text)
            if m:
                return kind, m["q"], m["a"], m["b"]
        raise ValueError(f"local judge: unrecognised judge prompt: {text[:200]!r}")

    def arena_text(self, d: float) -> str:
        if abs(d) < self.tie:
            return "My final verdict is tie: [[A=B]]"
        who, weak, strong = ("A", "A>B", "A>>B") if d > 0 else ("B", "B>A", "B>>A")
        if abs(d) < self.strong:
            return f"My final verdict is Assistant {who} is slightly better: [[{weak}]]"
        return f"My final verdict is Assistant {who} is significantly better: [[{strong}]]"

    def alpaca_choice(self, d: float) -> dict:
        lp_m = _log_sigmoid(d / self.temperature)
        lp_M = _log_sigmoid(-d / self.temperature)
        top = sorted(
            [{"token": "m", "logprob": lp_m}, {"token": "M", "logprob": lp_M}],
            key=lambda t: -t["logprob"],
        )
        best = top[0]
        content = [{"token": best["token"], "logprob": best["logprob"], "top_logprobs": top}]
        return choice(best["token"], {"content": content}, finish_reason="length")

    def complete(self, requests: list[list[dict]], **settings) -> list[dict]:
        parsed = [self.read_prompt(m) for m in requests]
        prompts = [q for _, q, _, _ in parsed for _ in range(2)]
        answers = [x for _, _, a, b in parsed for x in (a, b)]
        scores, _, _ = self.scorer.score(prompts, answers, desc=f"judge {self.name}")
        out = []
        for i, (kind, _, _, _) in enumerate(parsed):
            d = scores[2 * i] - scores[2 * i + 1]
            out.append(choice(self.arena_text(d)) if kind == "arena" else self.alpaca_choice(d))
        return out


def load_judge(spec: dict, cache_path: str | None = None, threads: int = 1) -> Judge:
    """A judge from its config (``judges.<name>``).

    ``kind: openai``: ``model``, ``api_key_env``, ``base_url``, ``max_calls``,
    ``max_retries``, ``backoff_s``, ``parallel``, ``timeout_s``; ``cache_path`` is the
    JSONL cache. ``kind: local``: ``path`` (a reward model directory), ``tie``,
    ``strong``, ``temperature`` and the reward-model keys of ``RewardScorer``
    (``max_length``, ``batch_size``, ``chat_template``).
    """
    kind = spec.get("kind")
    if kind == "openai":
        keys = ("api_key_env", "base_url", "max_calls", "max_retries", "backoff_s")
        keys += ("max_backoff_s", "timeout_s", "parallel", "name")
        return OpenAIJudge(
            spec["model"],
            cache_path=cache_path,
            **{k: spec[k] for k in keys if spec.get(k) is not None},
        )
    if kind == "local":
        knobs = {k: spec[k] for k in ("tie", "strong", "temperature", "name") if k in spec}
        return LocalJudge(spec["path"], spec, threads=threads, **knobs)
    raise ValueError(f"unknown judge kind {kind!r}; known: openai, local")
