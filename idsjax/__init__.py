"""idsjax: the network-intrusion attack/defense game of gym-idsgame as vectorised JAX environments."""

from idsjax import bots
from idsjax.config import GameConfig
from idsjax.env import IdsGameEnv
from idsjax.registry import make, registered_envs
from idsjax.scenario.env import ScenarioEnv, make_scenario, make_scenario_batch
from idsjax.scenario.generated import GeneratedEnv, make_generated
from idsjax.types import EnvParams, EnvState
from idsjax.versions import VERSIONS, Mode, RewardFamily

__all__ = [
    "VERSIONS",
    "EnvParams",
    "EnvState",
    "GameConfig",
    "GeneratedEnv",
    "IdsGameEnv",
    "Mode",
    "RewardFamily",
    "ScenarioEnv",
    "bots",
    "make",
    "make_generated",
    "make_scenario",
    "make_scenario_batch",
    "registered_envs",
]
__version__ = "0.1.0"

# Importing the package registers "idsjax/<id>" with gymnasium for the 88 single-agent ids: names and
# entry-point strings only, so the bridge itself loads when gymnasium first makes one of them.
from idsjax import gym_registration as _gym_registration  # noqa: E402,F401
