"""swarmfold.core: the pure decision core of the Jobmon swarm.

``decide(state, event) -> Decision(state, commands)`` is a Mealy machine: events are
facts the shell observed (past tense), commands are intents for the shell to carry out
(imperative). The core reads no clock, draws no random numbers, does no I/O and no logging.
"""

from swarmfold.core.batch_sizing import next_batch_size
from swarmfold.core.commands import Command
from swarmfold.core.config import SwarmConfig
from swarmfold.core.decide import Decision, decide, fold, is_terminal
from swarmfold.core.errors import InvalidTopology, ProtocolViolation, SwarmfoldError
from swarmfold.core.events import Event
from swarmfold.core.state import SwarmState, initial_state
from swarmfold.core.summary import RunSummary
from swarmfold.core.topology import ArraySpec, QueueSpec, ResourceSetSpec, TaskSpec, TopologySpec

__all__ = [
    "ArraySpec",
    "Command",
    "Decision",
    "Event",
    "InvalidTopology",
    "ProtocolViolation",
    "QueueSpec",
    "ResourceSetSpec",
    "RunSummary",
    "SwarmConfig",
    "SwarmState",
    "SwarmfoldError",
    "TaskSpec",
    "TopologySpec",
    "decide",
    "fold",
    "initial_state",
    "is_terminal",
    "next_batch_size",
]
