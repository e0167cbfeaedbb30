"""`python -m baselines.ued`."""

from baselines import cli
from baselines.ued import options

# --help, argument errors and a multi-process request (ued trains in one process, over --devices) are
# answered before JAX and the game load.
cli.start("__main__", {name: getattr(options, name) for name in ("ALGO", "HYPERPARAMETERS", "ENV_DEFAULTS", "OPTIONS")})

from baselines.ued.run import main  # noqa: E402

main()
