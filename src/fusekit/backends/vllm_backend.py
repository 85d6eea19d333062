"""The vLLM backend (paper scale, GPU only; imported only when chosen).

One engine per model for all its prompts, tensor-parallel over
``models.<name>.tensor_parallel_size`` GPUs. Untested on CPU machines: vLLM
needs a GPU.
"""

from __future__ import annotations

from fusekit.backends import Completion, SamplingParams
from fusekit.chat import encode_prompt, use_chat_template


class VLLMGenerator:
    def __init__(self, path: str, model_spec: dict, threads: int = 1):
        try:
            import vllm
        except ImportError as err:  # pragma: no cover - GPU path
            raise ImportError(
                "the vllm backend needs `pip install -e '.[gpu]'` on a GPU machine"
            ) from err
        self._vllm = vllm
        remote = model_spec.get("trust_remote_code", False)
        self.engine = vllm.LLM(
            model=path,
            tensor_parallel_size=model_spec.get("tensor_parallel_size", 1),
            dtype=model_spec.get("dtype", "bfloat16"),
            trust_remote_code=remote,
            seed=0,
        )
        self.tokenizer = self.engine.get_tokenizer()
        use_chat_template(self.tokenizer, model_spec.get("chat_template"))
        self.context_length = self.engine.llm_engine.model_config.max_model_len
        self.system_prompt = model_spec.get("system_prompt")

    def _encode(self, prompt, system):
        return encode_prompt(self.tokenizer, prompt, system or self.system_prompt)

    def prompt_lengths(self, prompts, systems):
        return [len(self._encode(p, s)) for p, s in zip(prompts, systems, strict=True)]

    def generate(self, prompts, systems, params: SamplingParams):
        sp = self._vllm.SamplingParams(
            n=params.samples_per_prompt,
            temperature=params.temperature,
            top_p=params.top_p,
            max_tokens=params.max_new_tokens,
            seed=params.seed,
            repetition_penalty=params.repetition_penalty,
        )
        inputs = [
            {"prompt_token_ids": self._encode(p, s)} for p, s in zip(prompts, systems, strict=True)
        ]
        outs = self.engine.generate(inputs, sp)
        return [
            [
                Completion(
                    o.text.strip(),
                    len(o.token_ids),
                    "stop" if o.finish_reason == "stop" else "length",
                )
                for o in req.outputs
            ]
            for req in outs
        ]


def teacher_forced_topk_vllm(
    path, model_spec, tokenizer, examples, k, top_p, temperature, max_length
):
    """Top-k dumps from vLLM prompt log-probabilities (paper scale; untested on CPU).

    vLLM returns the ``k + 1`` best log-probs of each prompt position at
    temperature 1 (plus the actual token's). The temperature is applied over
    that support and the top-p cut made there: an approximation of the
    transformers path, which tempers the full vocabulary.
    """
    import numpy as np
    import vllm

    from fusekit.logits import top_p_keep

    engine = vllm.LLM(
        model=path,
        tensor_parallel_size=model_spec.get("tensor_parallel_size", 1),
        dtype=model_spec.get("dtype", "bfloat16"),
        trust_remote_code=model_spec.get("trust_remote_code", False),
    )
    sp = vllm.SamplingParams(max_tokens=1, prompt_logprobs=k + 1, temperature=1.0)
    seqs = [e.input_ids for e in examples]  # the caller passes only examples that fit
    outs = engine.generate([{"prompt_token_ids": s} for s in seqs], sp)
    for e, s, o in zip(examples, seqs, outs, strict=True):
        resp = s[e.n_prompt :]
        ids = np.full((len(resp), k), -1, dtype=np.int32)
        lps = np.full((len(resp), k), -np.inf, dtype=np.float32)
        nll = []
        for t, tok in enumerate(resp):
            entry = o.prompt_logprobs[e.n_prompt + t]  # dict id -> Logprob, predicting token tok
            nll.append(-entry[tok].logprob)
            best = sorted(entry.items(), key=lambda kv: -kv[1].logprob)[:k]
            raw = np.array([v.logprob for _, v in best]) / temperature
            raw = raw - np.logaddexp.reduce(raw)
            keep = top_p_keep(np.exp(raw), top_p)
            ids[t, : keep.sum()] = [i for (i, _), kp in zip(best, keep, strict=True) if kp]
            lps[t, : keep.sum()] = raw[keep]
        yield resp, ids, lps, float(np.mean(nll))  # the mean NLL, as mean_cross_entropy
