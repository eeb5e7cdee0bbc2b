"""The API's JSON bodies as dataclasses (the Go side is package ``wire``).

Reading is lenient: a field the server adds later is ignored (kept in
``raw``), a field it leaves out takes its default. Times are timezone-aware
``datetime`` objects in UTC, or ``None`` when the server sent none.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Union

#: Task and job states, in lifecycle order.
STATES = ("queued", "scheduled", "running", "succeeded", "failed", "cancelled")
#: The states a job or task never leaves.
TERMINAL = frozenset(("succeeded", "failed", "cancelled"))

_FRACTION = re.compile(r"\.(\d+)")


def parse_time(v: Optional[str]) -> Optional[_dt.datetime]:
    """Parses an RFC 3339 time as the API writes it (nanoseconds, ``Z``).

    >>> parse_time("2026-01-02T03:04:05.123456789Z")
    datetime.datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=datetime.timezone.utc)
    """
    if not v or v.startswith("0001-01-01"):
        return None
    s = v.replace("Z", "+00:00").replace("z", "+00:00")
    # datetime takes at most microseconds; Go writes up to nanoseconds.
    s = _FRACTION.sub(lambda m: "." + (m.group(1) + "000000")[:6], s, count=1)
    return _dt.datetime.fromisoformat(s).astimezone(_dt.timezone.utc)


def counts_of(raw: Optional[Dict[str, int]]) -> Dict[str, int]:
    """A job's task counts with every state present (0 when none)."""
    out = {s: 0 for s in STATES}
    for k, n in (raw or {}).items():
        out[k] = int(n)
    return out


_UNITS = {
    "": 1, "b": 1,
    "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12,
    "ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?)?b?\s*$", re.IGNORECASE)


def parse_size(v: Union[int, str]) -> int:
    """Bytes from an int or a size such as ``"16Mi"``, ``"256M"``, ``"1GiB"``.

    >>> parse_size("16Mi"), parse_size("1G"), parse_size(4096)
    (16777216, 1000000000, 4096)
    """
    if isinstance(v, bool):
        raise TypeError("memory: want bytes (int) or a size such as '256Mi'")
    if isinstance(v, int):
        return v
    m = _SIZE.match(str(v))
    if not m:
        raise ValueError("memory: %r is not a size such as '256Mi' or '1G'" % (v,))
    return int(float(m.group(1)) * _UNITS[(m.group(2) or "").lower()])


def format_duration(v: Union[str, int, float, _dt.timedelta, None]) -> Optional[str]:
    """A Go duration string from seconds, a ``timedelta`` or a string.

    >>> format_duration(90), format_duration(_dt.timedelta(minutes=10)), format_duration("2h")
    ('90s', '600s', '2h')
    """
    if v is None or v == "":
        return None
    if isinstance(v, str):
        return v
    if isinstance(v, _dt.timedelta):
        v = v.total_seconds()
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise TypeError("timeout: want seconds, a timedelta or a string such as '10m'")
    if float(v).is_integer():
        return "%ds" % int(v)
    return "%gs" % v


@dataclass
class JobSpec:
    """What a job is submitted with (``POST /api/v1/jobs``).

    ``cpu`` is millicores (1000 = one core; the server's default is 1000),
    ``memory`` bytes (or a size such as ``"64Mi"``; default 256 MiB),
    ``array`` the number of tasks (each gets ``GANTRY_TASK_INDEX``),
    ``timeout`` per attempt (a Go duration such as ``"10m"``, or seconds),
    ``after`` jobs that must succeed first, ``after_any`` jobs that must
    only have ended, ``deps`` a list of ``{"job": id, "kind": k}`` with k
    one of ``afterok``, ``afternotok``, ``afterany``, ``n-to-n`` (the server
    folds ``after`` and ``after_any`` into it), ``sequential`` task i after
    task i-1, ``constraints`` node labels every task's node must have.
    ``inputs`` maps a mount path to what is mounted there read-only: an
    artifact of Gantry's registry (``"corpus:v1"``, pinned to its digest at
    submission) or another job's outputs (``"job:JOB"``). ``output`` is a
    writable directory in every task kept as an artifact when it ends, at
    most ``output_limit`` (bytes or ``"5Gi"``; default 1 GiB) a task;
    ``keep_failed_output`` keeps a failed attempt's too.

    >>> JobSpec(image="gantry/toolbox", command=["echo", "hi"], array=3).to_dict()
    {'image': 'gantry/toolbox', 'command': ['echo', 'hi'], 'array': 3}
    """

    image: str
    command: Optional[List[str]] = None
    name: Optional[str] = None
    env: Optional[Dict[str, str]] = None
    workdir: Optional[str] = None
    cpu: Optional[int] = None
    memory: Optional[Union[int, str]] = None
    gpus: Optional[int] = None
    array: Optional[int] = None
    retries: Optional[int] = None
    retry_on: Optional[List[int]] = None
    timeout: Optional[Union[str, int, float, _dt.timedelta]] = None
    priority: Optional[int] = None
    queue: Optional[str] = None
    labels: Optional[Dict[str, str]] = None
    after: Optional[List[str]] = None
    after_any: Optional[List[str]] = None
    deps: Optional[List[Dict[str, str]]] = None
    sequential: Optional[bool] = None
    constraints: Optional[Dict[str, str]] = None
    inputs: Optional[Dict[str, str]] = None
    output: Optional[str] = None
    output_limit: Optional[Union[int, str]] = None
    keep_failed_output: Optional[bool] = None

    #: the fields a submission may set, besides image and command
    FIELDS = ("name", "env", "workdir", "cpu", "memory", "gpus", "array", "retries", "retry_on",
              "timeout", "priority", "queue", "labels", "after", "after_any", "deps", "sequential", "constraints",
              "inputs", "output", "output_limit", "keep_failed_output")
    _OUTPUT = ("output", "output_limit", "keep_failed_output")

    def to_dict(self) -> Dict[str, Any]:
        """The JSON body, leaving out what is unset (the server's defaults)."""
        out: Dict[str, Any] = {"image": self.image}
        if self.command is not None:
            out["command"] = [str(a) for a in self.command]
        for f in self.FIELDS:
            v = getattr(self, f)
            if v is None or f in self._OUTPUT:
                continue
            if f == "inputs":
                v = [{"ref": str(ref), "path": str(path)} for path, ref in v.items()]
            elif f == "memory":
                v = parse_size(v)
            elif f == "timeout":
                v = format_duration(v)
            elif f in ("after", "after_any"):
                v = [j.id if isinstance(j, Job) else str(j) for j in v]
            elif f == "deps":
                v = [{"job": d["job"].id if isinstance(d["job"], Job) else str(d["job"]), "kind": d["kind"]} for d in v]
            out[f] = v
        if self.output is not None:
            o: Dict[str, Any] = {"path": self.output}
            if self.output_limit is not None:
                o["limit"] = parse_size(self.output_limit)
            if self.keep_failed_output:
                o["keep_failed"] = True
            out["output"] = o
        elif self.output_limit is not None or self.keep_failed_output:
            raise ValueError("output_limit and keep_failed_output go with output (a path in the task)")
        return out

    @classmethod
    def from_dict(cls, d: Optional[Dict[str, Any]]) -> "JobSpec":
        d = d or {}
        deps = d.get("deps") or None

        def kind(k: str) -> Optional[List[str]]:
            # after and after_any as the server folded them into deps
            ids = [x["job"] for x in deps or [] if x.get("kind") == k]
            return ids or None
        return cls(
            image=d.get("image", ""), command=d.get("command"), name=d.get("name") or None,
            env=d.get("env"), workdir=d.get("workdir") or None, cpu=d.get("cpu"), memory=d.get("memory"),
            gpus=d.get("gpus"), array=d.get("array"), retries=d.get("retries"), retry_on=d.get("retry_on"),
            timeout=d.get("timeout") or None, priority=d.get("priority"), queue=d.get("queue") or None,
            labels=d.get("labels"), after=d.get("after") or kind("afterok"),
            after_any=d.get("after_any") or kind("afterany"), deps=deps,
            sequential=d.get("sequential") or None, constraints=d.get("constraints"),
            inputs={x["path"]: x["ref"] for x in d.get("inputs") or []} or None,
            output=(d.get("output") or {}).get("path"), output_limit=(d.get("output") or {}).get("limit"),
            keep_failed_output=(d.get("output") or {}).get("keep_failed"),
        )


@dataclass
class Job:
    """A submitted job and its aggregate state.

    ``counts`` maps every state to the number of the job's tasks in it
    (``{"queued": 0, ..., "succeeded": 5, ...}``); ``total`` is the number
    of tasks. ``waiting`` says in words why queued tasks are not running
    (``Client.job`` only).
    """

    id: str
    owner: str
    state: str
    spec: JobSpec
    counts: Dict[str, int]
    total: int
    submitted: Optional[_dt.datetime] = None
    started: Optional[_dt.datetime] = None
    ended: Optional[_dt.datetime] = None
    cancel_requested: bool = False
    held: int = 0
    message: str = ""
    waiting: str = ""
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def done(self) -> bool:
        """Whether the job has ended (succeeded, failed or cancelled)."""
        return self.state in TERMINAL

    @property
    def succeeded(self) -> bool:
        """Whether every task succeeded."""
        return self.state == "succeeded"

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "Job":
        return cls(
            id=d.get("id", ""), owner=d.get("owner", ""), state=d.get("state", ""),
            spec=JobSpec.from_dict(d.get("spec")), counts=counts_of(d.get("counts")),
            total=int(d.get("total", 0)), submitted=parse_time(d.get("submitted")),
            started=parse_time(d.get("started")), ended=parse_time(d.get("ended")),
            cancel_requested=bool(d.get("cancel_requested", False)), held=int(d.get("held", 0)),
            message=d.get("message", ""), waiting=d.get("waiting", ""), raw=d,
        )


@dataclass
class Attempt:
    """One run of a task on a node; ``reason`` says why it ended
    (``exited``, ``oom_killed``, ``timed_out``, ``node_lost``, ``cancelled``,
    ``image_pull_failed``)."""

    job: str
    task: int
    attempt: int
    node: str
    state: str
    container: str = ""
    scheduled: Optional[_dt.datetime] = None
    started: Optional[_dt.datetime] = None
    ended: Optional[_dt.datetime] = None
    exit_code: Optional[int] = None
    reason: str = ""
    message: str = ""
    image_digest: str = ""
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "Attempt":
        return cls(
            job=d.get("job", ""), task=int(d.get("task", 0)), attempt=int(d.get("attempt", 0)),
            node=d.get("node", ""), state=d.get("state", ""), container=d.get("container", ""),
            scheduled=parse_time(d.get("scheduled")), started=parse_time(d.get("started")),
            ended=parse_time(d.get("ended")), exit_code=d.get("exit_code"), reason=d.get("reason", ""),
            message=d.get("message", ""), image_digest=d.get("image_digest", ""), raw=d,
        )


@dataclass
class Task:
    """One element of a job's array. ``attempt_list`` is filled by
    ``Client.task`` only."""

    job: str
    index: int
    state: str
    attempts: int = 0
    node: str = ""
    exit_code: Optional[int] = None
    reason: str = ""
    updated: Optional[_dt.datetime] = None
    reruns: int = 0
    attempt_list: List[Attempt] = field(default_factory=list)
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "Task":
        return cls(
            job=d.get("job", ""), index=int(d.get("index", 0)), state=d.get("state", ""),
            attempts=int(d.get("attempts", 0)), node=d.get("node", ""), exit_code=d.get("exit_code"),
            reason=d.get("reason", ""), updated=parse_time(d.get("updated")), reruns=int(d.get("reruns", 0)),
            attempt_list=[Attempt.from_dict(a) for a in d.get("attempt_list") or []], raw=d,
        )


@dataclass
class User:
    """An account (never its password)."""

    name: str
    admin: bool = False
    disabled: bool = False
    created: Optional[_dt.datetime] = None
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "User":
        return cls(name=d.get("name", ""), admin=bool(d.get("admin", False)),
                   disabled=bool(d.get("disabled", False)), created=parse_time(d.get("created")), raw=d)


@dataclass
class RerunResult:
    """The answer to ``Client.rerun``: the job, running again, and the task
    indexes queued again."""

    job: Job
    tasks: List[int]


@dataclass
class TaskOutput:
    """What one task left in its output directory, stored as an artifact
    ``repo:tag`` (``ref`` names it by digest, for ``oras pull`` or
    ``gantry data pull``)."""

    task: int
    repo: str
    tag: str
    digest: str
    files: int = 0
    bytes: int = 0
    ref: str = ""

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "TaskOutput":
        return cls(task=int(d.get("task", 0)), repo=d.get("repo", ""), tag=d.get("tag", ""), digest=d.get("digest", ""),
                   files=int(d.get("files", 0)), bytes=int(d.get("bytes", 0)), ref=d.get("ref", ""))
