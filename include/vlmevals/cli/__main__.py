"""`python -m vlmevals.cli`: the same as the `vlmevals` console script."""

from vlmevals.cli import main

main()
