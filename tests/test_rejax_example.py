"""examples/rejax_ppo.py: rejax's PPO, unchanged, learns an idsjax id through LegacyStepAPI."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import sys
from pathlib import Path

import pytest

# Measured on this CPU at this budget (10,240 steps, 10 PPO updates), seeds 0-5: the final greedy
# return beat uniformly random ids by 7.9, 10.0, 8.8, 8.6, 8.8 and 8.9 (random's SE over its 128
# games 0.6-0.8). 5 is below every seed's gain and far above random's noise.
MARGIN = 5.0


@pytest.mark.slow
def test_rejax_ppo_example_learns():
    pytest.importorskip("rejax")
    path = Path(__file__).resolve().parent.parent / "examples" / "rejax_ppo.py"
    spec = importlib.util.spec_from_file_location("rejax_ppo", path)
    example = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = example  # flax modules are dataclasses, which look their module up
    spec.loader.exec_module(example)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        result = example.main(["--timesteps", "10000", "--eval-every", "5000", "--seed", "0"])
    returns = [row["return"] for row in result["evaluations"]]
    assert [row["steps"] for row in result["evaluations"]] == [0, 5120, 10240]
    assert returns[-1] > result["random_return"] + MARGIN, result
    assert returns[-1] > returns[0] + MARGIN, result  # the return rises over the run
    assert "random" in printed.getvalue() and printed.getvalue().rstrip().endswith("}")


def test_rejax_ppo_example_refuses_a_two_agent_id(capsys):
    path = Path(__file__).resolve().parent.parent / "examples" / "rejax_ppo.py"
    spec = importlib.util.spec_from_file_location("rejax_ppo_args", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    with pytest.raises(SystemExit) as exit_info:
        example.main(["--env", "idsgame-v3"])
    assert exit_info.value.code == 2 and "single-agent" in capsys.readouterr().err
