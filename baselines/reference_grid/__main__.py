from baselines.reference_grid.run import main

main()
