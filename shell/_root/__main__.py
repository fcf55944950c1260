"""``python -m swarmfold`` runs the same CLI as the ``swarmfold`` console script."""

from swarmfold.shell.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
