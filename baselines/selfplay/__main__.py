"""`python -m baselines.selfplay`."""

from baselines.selfplay.run import main

main()
