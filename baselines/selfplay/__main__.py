"""`python -m baselines.selfplay`."""

from baselines.cli import settings_or_exit
from baselines.selfplay.run import main

settings_or_exit("baselines.selfplay")  # refuses a multi-process run in one sentence (self-play trains in one)
main()
