"""swarmfold: a deterministic, event-sourced re-implementation of the Jobmon swarm.

The pure decision core lives in :mod:`swarmfold.core`; the imperative shell (CLI, runner,
gateway, replay) in :mod:`swarmfold.shell`.
"""

__version__ = "0.1.0"
