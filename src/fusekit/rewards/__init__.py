"""Reward-model scoring, voting and reference-based advantage scores.

Scoring loads models (:mod:`.scoring`); voting and method comparison are pure
functions over score tables (:mod:`.vote`, :mod:`.methods`); reference-based
scores use sacrebleu, rouge-score and bert-score (:mod:`.reference`).
"""
