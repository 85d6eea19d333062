"""Fusion training: one loop for every variant (variants are config, not subclasses).

:mod:`.examples` turns votes and aligned dumps into target-tokenized training
examples; :mod:`.loop` trains the target on them stage by stage, checkpointing
outside the declared output so that a restarted job resumes; :mod:`.heldout` scores the
target on held-out reference answers at every epoch end (is it still learning?).
"""
