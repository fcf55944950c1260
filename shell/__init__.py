"""The imperative shell of swarmfold: codec, runner, gateway, CLI."""
