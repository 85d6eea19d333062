"""FuseRL's analyses of the trained models (PREFERENCE_FUSION.md §2; issue 16 item 4).

Every function reads files the workflow already wrote; nothing is trained or judged here.

Inputs
------
- **Held-out groups** (``results/<study>/data/heldout.parquet``, one line per (prompt,
  source), :data:`fusekit.preference.fuserl.GROUP_COLUMNS`): prompts that no variant
  trains on (the ``heldout`` part of ``studies.<study>.fuserl.split``).
- **Per-row log-probabilities** of a model on them (``results/<study>/ref_logps/<model>/
  heldout.parquet``, :data:`fusekit.train.reference.REFERENCE_COLUMNS`: ``prompt_id, row,
  logp_sum`` (nats), ``n_tokens``), in the ``group`` layout of
  :mod:`fusekit.train.sequences`: per prompt the K sources of the held-out table in sorted
  order, row ``2k`` = source k's best response, ``2k + 1`` its worst. Only a source with a
  pair (``has_pair``) has its responses there (the others are placeholders and are
  ignored), so both analyses use the sources with a pair; a prompt whose example was
  dropped (too long) has no rows and is skipped.
- **chat_eval.csv** of the study (AlpacaEval-2 LC/WR with standard errors, Arena-Hard WR
  with its bootstrap interval).

Definitions (FuseRL's Figures 1, 4 and 5; their exact recipes are not recovered [A])
----------------------------------------------------------------------------------
- A model's **preference** between two responses of one prompt is its average
  log-probability ``logp_sum / n_tokens`` (nats per token; SimPO's implicit reward up to
  beta): it prefers the response with the higher one.
- **Pairs.** ``within``: per prompt and source with a pair, (best, worst) of that source,
  the reward model's best as chosen. ``across``: per prompt, every two sources with a
  pair, their best responses, the one with the higher reward as chosen; equal rewards are
  a tie and skipped (counted in ``reward_ties``).
- **Preference accuracy** (Figure 1): the share of pairs where the model's average
  log-probability of the chosen response is strictly higher than the rejected one's (an
  exact tie counts as not preferring the chosen); 95% Wilson score interval of the
  binomial proportion [A: the paper's interval, if any, is not recovered].
- **Ablation** (Figure 4): per PO objective, the five variants SFT, FuseSFT, SFT+PO,
  FuseSFT+PO, FuseRL, each found from the config (:func:`ablation_roles`), with their
  AlpacaEval-2 LC/WR and Arena-Hard WR and 95% intervals from ``chat_eval.csv``.
- **Bias and variance against a judge** (Figure 5) [A]. For a pair (chosen w, rejected
  l) the model's preference probability is Bradley-Terry on its average log-probs,
  ``p_model = sigmoid(beta * (avg_logp(w) - avg_logp(l)))`` (``beta``:
  ``studies.<study>.analysis.beta``), the judge's is Bradley-Terry on its reward scores,
  ``p_judge = sigmoid((r_J(w) - r_J(l)) / tau)`` with ``tau`` the judge temperature
  (default the FuseSFT temperature alpha: FuseRL's weights softmax(r / alpha) give two
  sources exactly these odds). The judge is the study's reward model unless
  ``studies.<study>.analysis.judge`` names another, which then scores the same responses
  (pairs stay oriented by the study's reward model). Per model and pair kind, with
  ``e = p_model - p_judge``: ``bias = mean(e)``, ``abs_bias = |bias|``, ``variance =
  var(e)`` (ddof 1; NaN for one pair) and ``mse = mean(e^2)`` (= bias^2 + variance
  * (n-1)/n).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from fusekit.io import read_table, write_table  # noqa: E402
from fusekit.report.figures import save_png  # noqa: E402
from fusekit.report.tables import CHAT_COLUMNS, Z95, chat_cell  # noqa: E402

KINDS = ("within", "across")
PAIR_COLUMNS = (
    "kind",
    "prompt_id",
    "chosen_source",
    "rejected_source",
    "chosen_avg_logp",
    "rejected_avg_logp",
    "chosen_score",
    "rejected_score",
)
ACCURACY_COLUMNS = (
    "model",
    "kind",
    "n",
    "correct",
    "accuracy",
    "ci_lower",
    "ci_upper",
    "reward_ties",
)
BIAS_COLUMNS = (
    "model",
    "kind",
    "n",
    "mean_p_model",
    "mean_p_judge",
    "bias",
    "abs_bias",
    "variance",
    "mse",
    "judge",
)
ROLES = ("SFT", "FuseSFT", "SFT+PO", "FuseSFT+PO", "FuseRL")
OBJECTIVE_LABELS = {"fusepo_dpo": "DPO", "fusepo_simpo": "SimPO", "rloo_offline": "RLOO"}
SFT_OBJECTIVE = "fuse_sft"
ABLATION_COLUMNS = (
    "objective",
    "label",
    "role",
    "variant",
    "column",
    "value",
    "stderr",
    "ci_lower",
    "ci_upper",
)


# --- pairs ---------------------------------------------------------------------------


def _check_groups(groups: pd.DataFrame) -> None:
    need = ["prompt_id", "model", "best_score", "worst_score", "has_pair"]
    missing = [c for c in need if c not in groups.columns]
    if missing:
        raise ValueError(f"held-out groups: missing columns {missing}")


def scored_responses(groups: pd.DataFrame, logps: pd.DataFrame) -> pd.DataFrame:
    """One line per (prompt, source with a pair) whose best and worst rows are both in
    ``logps``: ``prompt_id`` (str), ``source``, ``best_score``, ``worst_score``,
    ``best_avg_logp``, ``worst_avg_logp`` (nats per token). Row numbers follow the group
    layout (module doc). Raises ValueError for missing columns or a scored row with no
    tokens."""
    _check_groups(groups)
    for c in ("prompt_id", "row", "logp_sum", "n_tokens"):
        if c not in logps.columns:
            raise ValueError(f"log-prob file: missing column {c!r}")
    sources = sorted(groups["model"].astype(str).unique())
    k = {s: i for i, s in enumerate(sources)}
    cells = groups[groups["has_pair"].astype(bool)]
    out = pd.DataFrame(
        {
            "prompt_id": cells["prompt_id"].astype(str).to_numpy(),
            "source": cells["model"].astype(str).to_numpy(),
            "best_score": cells["best_score"].to_numpy(dtype=float),
            "worst_score": cells["worst_score"].to_numpy(dtype=float),
        }
    )
    out["best_row"] = out["source"].map(k).astype(int) * 2
    out["worst_row"] = out["best_row"] + 1
    lp = logps.assign(prompt_id=logps["prompt_id"].astype(str), row=logps["row"].astype(int))
    if (lp["n_tokens"] <= 0).any():
        bad = lp[lp["n_tokens"] <= 0].iloc[0]
        raise ValueError(f"log-prob file: prompt {bad.prompt_id!r} row {bad.row} has no tokens")
    lp = lp.assign(avg=lp["logp_sum"] / lp["n_tokens"])[["prompt_id", "row", "avg"]]
    for role in ("best", "worst"):
        out = out.merge(
            lp.rename(columns={"row": f"{role}_row", "avg": f"{role}_avg_logp"}),
            on=["prompt_id", f"{role}_row"],
            how="inner",
        )
    out = out.sort_values(["prompt_id", "source"], kind="stable").reset_index(drop=True)
    return out[
        ["prompt_id", "source", "best_score", "worst_score", "best_avg_logp", "worst_avg_logp"]
    ]


def preference_pairs(scored: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The ``within`` and ``across`` pairs (:data:`PAIR_COLUMNS`) of
    :func:`scored_responses`, and the number of across-source pairs skipped for equal
    rewards (module doc)."""
    rows, ties = [], 0
    for r in scored.itertuples(index=False):
        rows.append(
            ("within", r.prompt_id, r.source, r.source)
            + (r.best_avg_logp, r.worst_avg_logp, r.best_score, r.worst_score)
        )
    for pid, lines in scored.groupby("prompt_id", sort=True):
        recs = list(lines.itertuples(index=False))
        for i in range(len(recs)):
            for j in range(i + 1, len(recs)):
                a, b = recs[i], recs[j]
                if a.best_score == b.best_score:
                    ties += 1
                    continue
                w, lo = (a, b) if a.best_score > b.best_score else (b, a)
                rows.append(
                    ("across", pid, w.source, lo.source)
                    + (w.best_avg_logp, lo.best_avg_logp, w.best_score, lo.best_score)
                )
    return pd.DataFrame(rows, columns=list(PAIR_COLUMNS)), ties


def wilson_interval(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """95% Wilson score interval of a binomial proportion k/n (NaN, NaN for n = 0)."""
    if n == 0:
        return math.nan, math.nan
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def preference_accuracy(groups: pd.DataFrame, logps: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """FuseRL Figure 1: per model (the keys of ``logps``, in order) and pair kind, how often
    its average log-probability prefers the reward model's chosen response
    (:data:`ACCURACY_COLUMNS`; accuracy and interval as fractions in [0, 1], NaN without
    pairs). Definitions in the module doc."""
    out = []
    for model, lp in logps.items():
        pairs, ties = preference_pairs(scored_responses(groups, lp))
        for kind in KINDS:
            p = pairs[pairs["kind"] == kind]
            n = len(p)
            k = int((p["chosen_avg_logp"] > p["rejected_avg_logp"]).sum())
            lo, hi = wilson_interval(k, n)
            out.append(
                (
                    model,
                    kind,
                    n,
                    k,
                    k / n if n else math.nan,
                    lo,
                    hi,
                    ties if kind == "across" else 0,
                )
            )
    return pd.DataFrame(out, columns=list(ACCURACY_COLUMNS))


# --- bias and variance against a judge ------------------------------------------------


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def judge_score_lookup(scores: pd.DataFrame, judge: str) -> dict[tuple[str, str, int], float]:
    """(prompt_id, model, sample) -> the judge's score, from score tables
    (``prompt_id, model, sample, score`` and optionally ``reward_model``, as
    ``scripts/score_responses.py`` writes them). Raises ValueError when the table holds
    other reward models only, or repeats a response."""
    if "reward_model" in scores.columns:
        scores = scores[scores["reward_model"] == judge]
        if scores.empty:
            raise ValueError(f"judge scores: no scores from {judge!r}")
    key = ["prompt_id", "model", "sample"]
    if scores.duplicated(key).any():
        raise ValueError(f"judge scores of {judge!r}: a response is scored twice")
    return {
        (str(p), str(m), int(s)): float(v)
        for p, m, s, v in zip(
            scores["prompt_id"], scores["model"], scores["sample"], scores["score"], strict=True
        )
    }


def rescore_groups(groups: pd.DataFrame, lookup: Mapping[tuple[str, str, int], float]):
    """``groups`` with ``judge_best`` and ``judge_worst``: the judge's scores of each
    line's best and worst sample (from :func:`judge_score_lookup`). Raises ValueError
    naming a response the judge did not score."""
    out = groups.copy()
    for role in ("best", "worst"):
        vals = []
        for p, m, s in zip(out["prompt_id"], out["model"], out[f"{role}_sample"], strict=True):
            key = (str(p), str(m), int(s))
            if key not in lookup:
                raise ValueError(f"judge scores: no score for prompt {key[0]!r} {key[1]} #{key[2]}")
            vals.append(lookup[key])
        out[f"judge_{role}"] = vals
    return out


def bias_variance(
    groups: pd.DataFrame,
    logps: Mapping[str, pd.DataFrame],
    beta: float,
    judge_temperature: float,
    judge: str = "reward model",
) -> pd.DataFrame:
    """FuseRL Figure 5 [A]: per model (keys of ``logps``) and pair kind, the error of its
    preference probability against the judge's (:data:`BIAS_COLUMNS`, probabilities in
    [0, 1]; definitions in the module doc). The judge's scores are ``judge_best`` /
    ``judge_worst`` of ``groups`` when present (:func:`rescore_groups`), else the reward
    model's ``best_score`` / ``worst_score``. Raises ValueError for ``beta`` or
    ``judge_temperature`` not positive."""
    if not beta > 0 or not judge_temperature > 0:
        raise ValueError(
            f"beta ({beta}) and the judge temperature ({judge_temperature}) must be > 0"
        )
    judged = None
    if "judge_best" in groups.columns:
        judged = {
            (str(p), str(m)): (float(b), float(w))
            for p, m, b, w in zip(
                groups["prompt_id"],
                groups["model"],
                groups["judge_best"],
                groups["judge_worst"],
                strict=True,
            )
        }
    out = []
    for model, lp in logps.items():
        # pairs are oriented by the study's reward model; a judge's scores are looked up
        pairs, _ = preference_pairs(scored_responses(groups, lp))
        jc, jr = _judge_sides(pairs, judged)
        for kind in KINDS:
            sel = (pairs["kind"] == kind).to_numpy()
            p = pairs[sel]
            n = len(p)
            margin = (p["chosen_avg_logp"] - p["rejected_avg_logp"]).to_numpy(float)
            pm = _sigmoid(beta * margin)
            pj = _sigmoid((jc[sel] - jr[sel]) / judge_temperature)
            e = pm - pj
            bias = float(e.mean()) if n else math.nan
            out.append(
                (
                    model,
                    kind,
                    n,
                    float(pm.mean()) if n else math.nan,
                    float(pj.mean()) if n else math.nan,
                    bias,
                    abs(bias),
                    float(e.var(ddof=1)) if n > 1 else math.nan,
                    float((e**2).mean()) if n else math.nan,
                    judge,
                )
            )
    return pd.DataFrame(out, columns=list(BIAS_COLUMNS))


def _judge_sides(pairs: pd.DataFrame, judged: dict | None) -> tuple[np.ndarray, np.ndarray]:
    """The judge's scores of each pair's chosen and rejected response: the reward model's
    (``chosen_score``/``rejected_score``) without ``judged``; else looked up per (prompt,
    source) -> (best, worst): within pairs take the source's best/worst, across pairs each
    source's best."""
    if judged is None:
        return pairs["chosen_score"].to_numpy(float), pairs["rejected_score"].to_numpy(float)
    ch, rj = [], []
    for r in pairs.itertuples(index=False):
        if r.kind == "within":
            b, w = judged[(r.prompt_id, r.chosen_source)]
        else:
            b = judged[(r.prompt_id, r.chosen_source)][0]
            w = judged[(r.prompt_id, r.rejected_source)][0]
        ch.append(b)
        rj.append(w)
    return np.asarray(ch, dtype=float), np.asarray(rj, dtype=float)


# --- the ablation per objective -------------------------------------------------------


def _stage(spec: dict) -> dict | None:
    stages = spec.get("stages") or []
    return stages[0] if len(stages) == 1 else None


def ablation_roles(variants: Mapping[str, dict]) -> pd.DataFrame:
    """FuseRL Figure 4's grouping, from the variants of the config (name -> spec with
    ``init`` and one stage ``{objective, temperature}``): columns ``objective, label,
    role, variant``, one line per PO objective and :data:`ROLES` entry, objectives in
    config order.

    Roles: ``SFT`` / ``FuseSFT``: one ``fuse_sft`` stage from the target with temperature
    0 (argmax weights) / above 0; for another objective (a PO stage): ``SFT+PO`` /
    ``FuseSFT+PO`` (temperature 0, from the SFT / FuseSFT variant) and ``FuseRL``
    (temperature above 0, from FuseSFT). Other variants (several stages, FusePO from SFT)
    are not in the figure. ``label``: :data:`OBJECTIVE_LABELS` (else the objective).
    Raises ValueError when two variants claim one role of one objective, or an objective
    lacks a role."""
    sft_role: dict[str, str] = {}
    for name, spec in variants.items():
        st = _stage(spec)
        if st and st["objective"] == SFT_OBJECTIVE and spec.get("init") == "target":
            sft_role[name] = "SFT" if float(st.get("temperature", 0.0)) == 0.0 else "FuseSFT"
    claims: dict[tuple[str, str], list[str]] = {}
    for name, role in sft_role.items():
        claims.setdefault(("", role), []).append(name)
    objectives: list[str] = []
    for name, spec in variants.items():
        st = _stage(spec)
        if not st or st["objective"] == SFT_OBJECTIVE or spec.get("init") not in sft_role:
            continue
        init_role = sft_role[spec["init"]]
        hot = float(st.get("temperature", 0.0)) > 0.0
        if hot and init_role != "FuseSFT":
            continue
        role = "FuseRL" if hot else f"{init_role}+PO"
        objective = st["objective"]
        if objective not in objectives:
            objectives.append(objective)
        claims.setdefault((objective, role), []).append(name)
    rows = []
    for objective in objectives:
        for role in ROLES:
            key = ("", role) if role in ("SFT", "FuseSFT") else (objective, role)
            names = claims.get(key, [])
            if len(names) != 1:
                what = "no variant" if not names else f"variants {names}"
                raise ValueError(f"FuseRL ablation: {what} for role {role!r} of {objective!r}")
            rows.append((objective, OBJECTIVE_LABELS.get(objective, objective), role, names[0]))
    return pd.DataFrame(rows, columns=["objective", "label", "role", "variant"])


def ablation_table(roles: pd.DataFrame, chat: pd.DataFrame) -> pd.DataFrame:
    """The ablation's numbers (:data:`ABLATION_COLUMNS`, points): each variant of
    ``roles`` (:func:`ablation_roles`) with its AlpacaEval-2 LC and WR (interval +- 1.96
    SE) and Arena-Hard WR (bootstrap interval) from ``chat_eval.csv``. Raises ValueError
    naming a variant without a chat_eval.csv row."""
    chat = chat.assign(model=chat["model"].astype(str)).set_index("model", drop=False)
    rows = []
    for r in roles.itertuples(index=False):
        if r.variant not in chat.index:
            raise ValueError(f"FuseRL ablation: chat_eval.csv has no row {r.variant!r}")
        for label in CHAT_COLUMNS:
            value, se, lo, hi = chat_cell(chat.loc[r.variant], label)
            rows.append((r.objective, r.label, r.role, r.variant, label, value, se, lo, hi))
    return pd.DataFrame(rows, columns=list(ABLATION_COLUMNS))


# --- figures --------------------------------------------------------------------------


def _bars(ax, groups: list[str], series: dict[str, tuple], ylabel: str) -> None:
    """Grouped bars: ``series`` name -> (values, lower, upper) over ``groups``."""
    x = np.arange(len(groups))
    width = 0.8 / max(len(series), 1)
    for i, (name, (v, lo, hi)) in enumerate(series.items()):
        v, lo, hi = (np.asarray(a, dtype=float) for a in (v, lo, hi))
        err = np.nan_to_num(np.vstack([v - lo, hi - v]))
        ax.bar(x + (i - (len(series) - 1) / 2) * width, np.nan_to_num(v), width, label=name)
        ax.errorbar(
            x + (i - (len(series) - 1) / 2) * width,
            np.nan_to_num(v),
            yerr=err,
            fmt="none",
            ecolor="black",
            capsize=2,
            lw=0.8,
        )
    ax.set_xticks(x)
    ax.set_xticklabels(groups, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)


def plot_accuracy(acc: pd.DataFrame, title: str, out: str | Path) -> None:
    """Grouped bars per model: within- and across-source preference accuracy (%) with
    95% Wilson intervals; chance (50%) dotted."""
    models = list(dict.fromkeys(acc["model"]))
    series = {}
    for kind in KINDS:
        d = acc[acc["kind"] == kind].set_index("model").reindex(models)
        series[f"{kind} source"] = (100 * d["accuracy"], 100 * d["ci_lower"], 100 * d["ci_upper"])
    fig, ax = plt.subplots(figsize=(max(5.0, 0.6 * len(models) + 2), 3.6))
    _bars(ax, models, series, "preference accuracy (%)")
    ax.axhline(50, color="grey", ls=":", lw=0.8)
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8)
    ax.set_title(title)
    save_png(fig, out)


def plot_ablation(table: pd.DataFrame, title: str, out: str | Path) -> None:
    """One panel per objective: grouped bars per chat column (AlpacaEval-2 LC/WR,
    Arena-Hard WR) for the five roles, with 95% intervals."""
    labels = list(dict.fromkeys(table["label"]))
    fig, axes = plt.subplots(
        1,
        max(len(labels), 1),
        figsize=(4.6 * max(len(labels), 1), 3.6),
        sharey=True,
        squeeze=False,
    )
    for ax, label in zip(axes[0], labels, strict=False):
        d = table[table["label"] == label]
        series = {}
        for role in ROLES:
            r = d[d["role"] == role].set_index("column").reindex(list(CHAT_COLUMNS))
            name = role.replace("PO", label)
            series[name] = (r["value"], r["ci_lower"], r["ci_upper"])
        _bars(ax, list(CHAT_COLUMNS), series, "win rate (%)")
        ax.set_title(label)
        ax.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    save_png(fig, out)


def plot_bias_variance(bv: pd.DataFrame, title: str, out: str | Path) -> None:
    """Two panels, grouped bars per model (within / across pairs): |bias| and variance of
    p_model - p_judge."""
    models = list(dict.fromkeys(bv["model"]))
    fig, axes = plt.subplots(1, 2, figsize=(max(9.0, 1.1 * len(models) + 3), 3.6))
    for ax, col, ylabel in (
        (axes[0], "abs_bias", "|mean(p_model - p_judge)|"),
        (axes[1], "variance", "var(p_model - p_judge)"),
    ):
        series = {}
        for kind in KINDS:
            d = bv[bv["kind"] == kind].set_index("model").reindex(models)
            series[f"{kind} source"] = (d[col], d[col], d[col])
        _bars(ax, models, series, ylabel)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    save_png(fig, out)


# --- file to file ---------------------------------------------------------------------


def _read_logps(logps: Mapping[str, str]) -> dict[str, pd.DataFrame]:
    return {name: read_table(path) for name, path in logps.items()}


def write_accuracy(
    heldout: str, logps: Mapping[str, str], out: str, figure: str, title: str = ""
) -> pd.DataFrame:
    """File to file: the held-out groups and each model's log-prob file (name -> path, in
    figure order) -> the accuracy table (CSV, :data:`ACCURACY_COLUMNS`) and its figure."""
    acc = preference_accuracy(read_table(heldout), _read_logps(logps))
    write_table(acc, out)
    plot_accuracy(acc, title or "Preference accuracy on held-out prompts", figure)
    return acc


def write_bias_variance(
    heldout: str,
    logps: Mapping[str, str],
    out: str,
    figure: str,
    beta: float,
    judge_temperature: float,
    judge: str,
    judge_scores: list[str] | None = None,
    title: str = "",
) -> pd.DataFrame:
    """File to file: as :func:`write_accuracy`, the bias/variance table
    (:data:`BIAS_COLUMNS`) and its figure; ``judge_scores``: score tables of a judge other
    than the study's reward model (every source's, on the study's prompt set), else
    None."""
    groups = read_table(heldout)
    if judge_scores:
        scores = pd.concat([read_table(p) for p in judge_scores], ignore_index=True)
        groups = rescore_groups(groups, judge_score_lookup(scores, judge))
    bv = bias_variance(groups, _read_logps(logps), beta, judge_temperature, judge)
    write_table(bv, out)
    plot_bias_variance(bv, title or f"Preference scores against {judge} (held-out)", figure)
    return bv


def write_ablation(
    chat_eval: str, variants: Mapping[str, dict], out: str, figure: str, title: str = ""
) -> pd.DataFrame:
    """File to file: ``chat_eval.csv`` and the study's variants (config) -> the ablation
    table (CSV, :data:`ABLATION_COLUMNS`) and its figure."""
    table = ablation_table(ablation_roles(variants), pd.read_csv(chat_eval))
    write_table(table, out)
    plot_ablation(table, title or "FuseRL ablation per objective", figure)
    return table
