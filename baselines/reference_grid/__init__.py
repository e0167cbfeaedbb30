"""The reference's experiment grid: gym-idsgame's 179 training configurations (v0-v21), mapped onto the
idsjax trainers and run in one command.

- `configs.json`: the grid as data (`extract.py` regenerates it from the reference's history).
- `mapping`: each configuration -> trainer, environment id, hyperparameter flags, and every difference.
- `run` (`python -m baselines.reference_grid`): runs any subset, seeds vmapped, resumable.
- `report` (`python -m baselines.reference_grid.report`): writes `baselines/REFERENCE_GRID.md`.
- `vs_reference` (`python -m baselines.reference_grid.vs_reference`): the reference's own tabular
  Q-learning beside idsjax on a few configurations.
"""
