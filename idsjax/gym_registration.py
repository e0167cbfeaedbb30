"""The gymnasium names of the 88 single-agent ids, registered when `idsjax` is imported.

Registration is only the names and the entry-point strings `idsjax.gym_bridge:IdsGameGymEnv` and
`IdsGameVectorEnv`: gymnasium imports the bridge (its `Env` and `VectorEnv` classes) the first time
one of them is made, so `import idsjax` does not load the bridges. Only gymnasium's registry is
touched, which gymnax (the library's environment API) has imported already.
"""

from __future__ import annotations

from gymnasium.envs.registration import register, registry

from idsjax.registry import registered_envs

NAMESPACE = "idsjax"


def single_agent_ids() -> tuple[str, ...]:
    """The 88 ids with a scripted opponent, `idsgame-<mode>-vN`."""
    return tuple(i for i in registered_envs() if not i.startswith("idsgame-v"))


def gym_id(env_id: str) -> str:
    """`idsgame-minimal_defense-v3` -> `idsjax/idsgame-minimal_defense-v3`."""
    return f"{NAMESPACE}/{env_id}"


def register_all() -> tuple[str, ...]:
    """Register `idsjax/<id>` with gymnasium for the 88 single-agent ids (idempotent)."""
    ids = []
    for env_id in single_agent_ids():
        name = gym_id(env_id)
        if name not in registry:
            register(
                id=name,
                entry_point="idsjax.gym_bridge:IdsGameGymEnv",
                kwargs={"env_id": env_id},
                vector_entry_point="idsjax.gym_bridge:IdsGameVectorEnv",
            )
        ids.append(name)
    return tuple(ids)


GYM_IDS = register_all()
