"""Gantry's Python client: submit batch jobs, watch them, read their logs.

It speaks Gantry's REST API (``/api/v1``) with the standard library only.

>>> import gantry
>>> c = gantry.Client()        # GANTRY_ADDR (default http://127.0.0.1:7070), GANTRY_TOKEN
>>> job = c.submit("gantry/toolbox", ["echo", "hi"], array=5, cpu=100, memory="32Mi")
>>> job = c.wait(job.id, progress=lambda counts: print(counts["succeeded"], "of", job.total))
>>> job.state
'succeeded'
>>> c.logs(job.id, task=0)
'hi\\n'

Every refusal raises :class:`APIError` (``.status``, ``.code``,
``.message``); an unreachable server raises :class:`ConnectError`.
"""

from .client import DEFAULT_ADDR, Client, LogStream
from .errors import APIError, ConnectError, GantryError, WaitTimeout
from .types import STATES, TERMINAL, Attempt, Job, JobSpec, RerunResult, Task, TaskOutput, User

__version__ = "0.1.0"

__all__ = [
    "Client", "LogStream", "DEFAULT_ADDR",
    "APIError", "ConnectError", "GantryError", "WaitTimeout",
    "Job", "JobSpec", "Task", "TaskOutput", "Attempt", "User", "RerunResult", "STATES", "TERMINAL",
]
