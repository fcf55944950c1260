"""swarmfold's Hypothesis machine and strategies, shipped for users (``pip install
'swarmfold[testing]'``), as ``zarr.testing.stateful`` ships zarr's.

- ``SwarmMachine``: the pure core against ``ModelServer`` (the one Jobmon server model,
  ``ServerModel``, under a Hypothesis driver and fault injection), under random answer orders,
  failures, clock moves and faults, checking the core's invariants after every
  step and liveness at the end. ``SwarmMachine.TestCase`` is a unittest/pytest test.
- ``swarm_machine(topologies=..., configs=...)``: the same machine on your own workflows and
  configurations.
- ``topologies()``, ``configs``: the bundled strategies; ``evaluate``: the user callables the
  machine's workflows name.
"""

from swarmfold.testing.model_server import ModelServer
from swarmfold.testing.stateful import FAULT_KINDS, SwarmMachine, swarm_machine
from swarmfold.testing.strategies import QUEUES, configs, evaluate, topologies

__all__ = [
    "FAULT_KINDS",
    "QUEUES",
    "ModelServer",
    "SwarmMachine",
    "configs",
    "evaluate",
    "swarm_machine",
    "topologies",
]
