"""`python -m baselines.ued`."""

from baselines.ued.run import main

main()
