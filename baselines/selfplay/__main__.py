"""`python -m baselines.selfplay`."""

from baselines.cli import settings_or_exit
from baselines.selfplay.config import parse_early

_, rest = settings_or_exit("baselines.selfplay")  # refuses a multi-process run in one sentence (one process)
parse_early(rest)  # --help and argument errors, before JAX loads

from baselines.selfplay.run import main  # noqa: E402

main()
