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
