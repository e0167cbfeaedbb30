"""Autocurricula over generated networks (issue 26 item 1): domain randomisation, PLR, robust PLR and
ACCEL for the attacker, the defender, or both in self-play, with jaxued's `LevelSampler` as the level
buffer. `python -m baselines.ued --side attacker|defender|both --method dr|plr|robust_plr|accel`;
docs/ued.md says what each method does and what was measured.

`levels` (the jaxued adapter and its one import), `trainer` (the compiled update), `options` (the
command line), `run` (the host side: directory, evaluation, JSON line).
"""
