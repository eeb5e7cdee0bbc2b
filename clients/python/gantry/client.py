"""The client for Gantry's REST API (docs/api.md), on the standard library.

>>> import gantry
>>> c = gantry.Client()                     # GANTRY_ADDR, GANTRY_TOKEN
>>> job = c.submit("gantry/toolbox", ["echo", "hi"], array=5, cpu=100, memory="32Mi")
>>> job = c.wait(job.id, progress=print)
>>> job.state, c.logs(job.id, task=0)
('succeeded', 'hi\\n')
"""

from __future__ import annotations

import codecs
import json
import os
import secrets
import shlex
import socket
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Union

from .errors import APIError, ConnectError, WaitTimeout
from .types import Job, JobSpec, RerunResult, Task, TaskOutput, User

DEFAULT_ADDR = "http://127.0.0.1:7070"


def _check_member(m: "tarfile.TarInfo") -> None:
    """Refuses a member of a downloaded output that could write outside
    the target: an absolute or ``..`` name, a link leading out of the
    tree, a device or FIFO (the server never sends one; this is the
    client's own guard)."""
    name = m.name
    parts = name.split("/")
    if name.startswith("/") or ".." in parts:
        raise ValueError("output archive: unsafe path %r" % name)
    if not (m.isfile() or m.isdir() or m.issym()):
        raise ValueError("output archive: %r is not a file, directory or link" % name)
    if m.issym():
        target = m.linkname
        depth = len(parts) - 1
        for p in target.split("/"):
            depth += -1 if p == ".." else (0 if p in ("", ".") else 1)
            if depth < 0:
                break
        if target.startswith("/") or depth < 0:
            raise ValueError("output archive: link %r points outside the tree (%r)" % (name, target))
_API = "/api/v1"


def _retry_after(v: Optional[str]) -> Optional[float]:
    try:
        return float(v) if v else None
    except ValueError:
        return None


class Client:
    """Talks to one Gantry node.

    ``addr`` defaults to ``$GANTRY_ADDR`` (else ``http://127.0.0.1:7070``),
    ``token`` to ``$GANTRY_TOKEN`` (an API token: ``gantry login``,
    ``DATA/admin-token``, or ``login`` below). ``timeout`` bounds each
    request's socket waits in seconds. Reads and job submissions answered
    503 (an election, a node still starting) are sent again with backoff
    for up to ``retry_for`` seconds; submissions carry an idempotency key,
    so a repeat makes one job.

    Every refusal raises :class:`gantry.APIError`; a server that cannot be
    reached raises :class:`gantry.ConnectError`.

    >>> c = gantry.Client("http://gantry.lab:7070", token="...")
    """

    def __init__(self, addr: Optional[str] = None, token: Optional[str] = None,
                 timeout: float = 30.0, retry_for: float = 30.0):
        addr = (addr or os.environ.get("GANTRY_ADDR") or DEFAULT_ADDR).rstrip("/")
        if "://" not in addr:
            addr = "http://" + addr
        self.addr = addr
        self.token = (token if token is not None else os.environ.get("GANTRY_TOKEN")) or None
        self.timeout = timeout
        self.retry_for = retry_for
        # As Go's client does, a node on this machine is reached directly,
        # whatever proxy the environment names.
        host = urllib.parse.urlsplit(addr).hostname or ""
        loopback = host == "localhost" or host.startswith("127.") or host == "::1"
        self._opener = urllib.request.build_opener(*([urllib.request.ProxyHandler({})] if loopback else []))

    def __repr__(self) -> str:
        return "gantry.Client(%r)" % self.addr

    # -- transport ---------------------------------------------------------

    def _open(self, method: str, path: str, body: Any = None, query: Optional[Dict[str, Any]] = None,
              key: Optional[str] = None, timeout: Optional[float] = -1.0):
        """Sends a request and returns the open response of a 2xx answer.

        A GET or a keyed request answered 503 is sent again with backoff
        (50 ms doubling to 2 s, or the server's Retry-After when longer)
        until ``retry_for`` seconds have passed.
        """
        url = self.addr + _API + path
        if query:
            q = {k: v for k, v in query.items() if v is not None and v != ""}
            if q:
                url += "?" + urllib.parse.urlencode(q, doseq=True)
        data = None
        headers = {"Accept": "application/json", "User-Agent": "gantry-python/0.1"}
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        if key:
            headers["Idempotency-Key"] = key
        if timeout is not None and timeout < 0:
            timeout = self.timeout
        retry = method == "GET" or key is not None
        deadline = time.monotonic() + self.retry_for
        wait = 0.05
        while True:
            req = urllib.request.Request(url, data=data, headers=headers, method=method)
            try:
                return self._opener.open(req, timeout=timeout)
            except urllib.error.HTTPError as e:
                err = self._error(e)
            except urllib.error.URLError as e:
                reason = e.reason if isinstance(e.reason, str) else (str(e.reason) or type(e.reason).__name__)
                raise ConnectError("cannot reach Gantry at %s: %s" % (self.addr, reason)) from e
            except (socket.timeout, TimeoutError) as e:
                raise ConnectError("cannot reach Gantry at %s: no answer within %ss" % (self.addr, timeout)) from e
            except (ConnectionError, OSError) as e:
                raise ConnectError("cannot reach Gantry at %s: %s" % (self.addr, e)) from e
            pause = max(wait, min(err.retry_after or 0, 2.0))
            if not retry or err.status != 503 or time.monotonic() + pause > deadline:
                raise err
            time.sleep(pause)
            wait = min(wait * 2, 2.0)

    @staticmethod
    def _error(e: urllib.error.HTTPError) -> APIError:
        try:
            raw = e.read(64 << 10)
        except OSError:
            raw = b""
        finally:
            e.close()
        text = raw.decode("utf-8", "replace").strip()
        code, message = "", text
        try:
            body = json.loads(text)
            if isinstance(body, dict) and body.get("error"):
                code, message = str(body.get("code") or ""), str(body["error"])
        except ValueError:
            pass
        if not message:
            message = "%d %s" % (e.code, e.reason)
        return APIError(e.code, code, message, _retry_after(e.headers.get("Retry-After") if e.headers else None))

    def _json(self, method: str, path: str, body: Any = None, query: Optional[Dict[str, Any]] = None,
              key: Optional[str] = None, timeout: Optional[float] = -1.0) -> Any:
        with self._open(method, path, body, query, key, timeout) as resp:
            try:
                raw = resp.read()
            except OSError as e:
                raise ConnectError("lost the connection to Gantry at %s: %s" % (self.addr, e)) from e
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError as e:
            raise APIError(resp.status, "", "undecodable answer to %s %s: %s" % (method, path, e)) from e

    @staticmethod
    def _id(job: Union[str, Job]) -> str:
        return urllib.parse.quote(job.id if isinstance(job, Job) else str(job), safe="")

    # -- session -----------------------------------------------------------

    def login(self, user: str, password: str) -> str:
        """Exchanges a username and password for a long-lived API token,
        keeps it for later calls and returns it.

        Raises ``APIError`` (401 ``unauthorized``) for a wrong password.

        >>> c = gantry.Client("http://127.0.0.1:7070")
        >>> token = c.login("alice", "alice-secret-1")
        """
        out = self._json("POST", "/login", {"username": user, "password": password, "client": "python"})
        self.token = out["token"]
        return self.token

    def me(self) -> User:
        """The signed-in account."""
        return User.from_dict(self._json("GET", "/me"))

    # -- jobs --------------------------------------------------------------

    def submit(self, image: Union[str, JobSpec], command: Union[Sequence[str], str, None] = None,
               **job_fields: Any) -> Job:
        """Submits a job and returns it (state ``queued``).

        ``command`` is a list of arguments (a string is split as a shell
        would). ``job_fields`` are the other fields of a job spec:
        ``name, env, workdir, cpu`` (millicores), ``memory`` (bytes or
        ``"64Mi"``), ``gpus, array, retries, retry_on, timeout`` (``"10m"``
        or seconds), ``priority, queue, labels, after, after_any,
        constraints``. A :class:`JobSpec` may be passed instead of the image.

        The submission carries a random ``Idempotency-Key``, so it is sent
        again safely while the cluster answers 503. A job that could never
        run (bad field, image not found, more than any node has) raises
        ``APIError`` with status 400 and code ``invalid``.

        >>> job = c.submit("gantry/toolbox", ["echo", "hi"], array=5, cpu=100, memory="32Mi",
        ...                labels={"project": "demo"}, retries=2, timeout="1m")
        >>> job.id, job.total
        ('01J...', 5)
        """
        if isinstance(image, JobSpec):
            if command is not None or job_fields:
                raise TypeError("submit: pass a JobSpec alone, or an image with fields")
            spec = image
        else:
            unknown = sorted(set(job_fields) - set(JobSpec.FIELDS))
            if unknown:
                raise TypeError("submit: unknown job field(s) %s; fields are %s"
                                % (", ".join(unknown), ", ".join(JobSpec.FIELDS)))
            if isinstance(command, str):
                command = shlex.split(command)
            spec = JobSpec(image=image, command=list(command) if command is not None else None, **job_fields)
        return Job.from_dict(self._json("POST", "/jobs", spec.to_dict(), key=secrets.token_hex(16)))

    def job(self, job_id: Union[str, Job]) -> Job:
        """Fetches a job; raises ``APIError`` 404 ``not_found`` for an
        unknown job (or another user's)."""
        return Job.from_dict(self._json("GET", "/jobs/" + self._id(job_id)))

    def jobs(self, state: Optional[str] = None, owner: Optional[str] = None, q: Optional[str] = None,
             limit: Optional[int] = None, page_size: int = 100) -> Iterator[Job]:
        """Yields jobs, newest first, following the ``next`` cursor page by
        page (``page_size`` per request, at most 1000) until ``limit`` jobs
        (all when ``None``).

        ``state`` selects one state, ``owner`` one user's jobs (admins),
        ``q`` a text search over names, ids, images and labels.

        >>> [j.id for j in c.jobs(state="running", limit=10)]
        >>> failed = list(c.jobs(state="failed"))
        """
        if limit is not None and limit <= 0:
            return
        cursor = None
        seen = 0
        while True:
            size = page_size if limit is None else min(page_size, limit - seen)
            page = self._json("GET", "/jobs", query={"state": state, "owner": owner, "q": q,
                                                     "limit": size, "cursor": cursor})
            for d in page.get("jobs") or []:
                yield Job.from_dict(d)
                seen += 1
                if limit is not None and seen >= limit:
                    return
            cursor = page.get("next")
            if not cursor:
                return

    def cancel(self, job_id: Union[str, Job]) -> Job:
        """Cancels a job: queued tasks end ``cancelled`` and running ones
        are stopped. Returns the job (``cancel_requested`` set)."""
        return Job.from_dict(self._json("POST", "/jobs/" + self._id(job_id) + "/cancel"))

    def rerun(self, job_id: Union[str, Job], failed: bool = False,
              tasks: Optional[Sequence[int]] = None) -> RerunResult:
        """Runs chosen ended tasks of an ended job again, in the same job:
        every failed one (``failed=True``) or the ``tasks`` named by index.
        Earlier attempts and logs stay.

        Raises ``APIError`` 409 ``conflict`` while the job has not ended or
        when it has no failed task.

        >>> r = c.rerun(job.id, failed=True)
        >>> r.tasks
        [3, 11]
        """
        if bool(failed) == bool(tasks):
            raise TypeError("rerun: pass failed=True or tasks=[...], not both or neither")
        body: Dict[str, Any] = {"failed": True} if failed else {"tasks": [int(i) for i in tasks or []]}
        out = self._json("POST", "/jobs/" + self._id(job_id) + "/rerun", body)
        return RerunResult(job=Job.from_dict(out["job"]), tasks=list(out.get("tasks") or []))

    def wait(self, job_id: Union[str, Job], progress: Optional[Callable[[Dict[str, int]], Any]] = None,
             timeout: Optional[float] = None) -> Job:
        """Waits until the job ends and returns it.

        ``progress``, when given, is called with the job's counts (a dict
        of every state to a number of tasks) first and then each time they
        change. ``timeout`` (seconds; ``None``: no limit) raises
        :class:`gantry.WaitTimeout`, whose ``job`` is the last state seen.

        >>> job = c.wait(job.id, progress=lambda n: print(n["succeeded"], "done"))
        >>> job.state
        'succeeded'
        """
        jid = self._id(job_id)
        deadline = None if timeout is None else time.monotonic() + timeout
        last: Optional[Dict[str, int]] = None
        # The server's wait answers only when the job ends; to see counts
        # change, a progress callback waits in short slices.
        slice_ = 0.5 if progress else 60.0
        job = self.job(job_id)
        while True:
            if progress and job.counts != last:
                last = dict(job.counts)
                progress(dict(job.counts))
            if job.done:
                return job
            step = slice_
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise WaitTimeout("job %s has not ended after %ss (state %s)" % (job.id, timeout, job.state), job)
                step = min(step, max(left, 0.001))
            # Milliseconds: the server reads a Go duration.
            ms = max(int(step * 1000), 1)
            job = Job.from_dict(self._json("GET", "/jobs/" + jid + "/wait", query={"timeout": "%dms" % ms},
                                           timeout=step + self.timeout))

    # -- tasks and logs ----------------------------------------------------

    def tasks(self, job_id: Union[str, Job], state: Optional[str] = None) -> List[Task]:
        """Every task of a job (optionally those in one state), by index."""
        out: List[Task] = []
        cursor = None
        while True:
            page = self._json("GET", "/jobs/" + self._id(job_id) + "/tasks",
                              query={"state": state, "limit": 10000, "cursor": cursor})
            out.extend(Task.from_dict(d) for d in page.get("tasks") or [])
            cursor = page.get("next")
            if not cursor:
                return out

    def outputs(self, job_id: Union[str, Job]) -> List[TaskOutput]:
        """The stored outputs of a job's tasks (``output=`` at submission),
        by task index; a task that kept none is left out."""
        out: List[TaskOutput] = []
        cursor = None
        while True:
            page = self._json("GET", "/jobs/" + self._id(job_id) + "/outputs", query={"cursor": cursor})
            out.extend(TaskOutput.from_dict(d) for d in page.get("outputs") or [])
            cursor = page.get("next")
            if not cursor:
                return out

    def download_output(self, job_id: Union[str, Job], task: int, directory: str) -> List[str]:
        """Writes task ``task``'s stored output into ``directory`` (made if
        missing) and returns the paths written, relative to it. The archive
        is extracted with tarfile's ``data`` filter: nothing is written
        outside ``directory``.

        >>> c.download_output(job, 0, "results/task-0")
        ['task.txt', 'nested/deeper/index', ...]
        """
        resp = self._open("GET", "/jobs/%s/tasks/%d/output" % (self._id(job_id), int(task)))
        os.makedirs(directory, exist_ok=True)
        names: List[str] = []
        with resp, tarfile.open(fileobj=resp, mode="r|") as tf:
            for m in tf:
                _check_member(m)
                if hasattr(tarfile, "data_filter"):
                    tf.extract(m, directory, filter="data")
                else:  # Python before 3.11.4: _check_member did what the filter does
                    tf.extract(m, directory, set_attrs=m.isfile() or m.isdir())
                if m.isfile():
                    names.append(m.name)
        return names

    def task(self, job_id: Union[str, Job], index: int) -> Task:
        """One task with its attempts (``attempt_list``): node, exit code and
        why each ended."""
        return Task.from_dict(self._json("GET", "/jobs/%s/tasks/%d" % (self._id(job_id), int(index))))

    def logs(self, job_id: Union[str, Job], task: int = 0, follow: bool = False,
             attempt: Optional[int] = None) -> Union[str, "LogStream"]:
        """A task's log (stdout and stderr as written), of its latest
        attempt unless ``attempt`` (from 1) is given.

        Without ``follow`` it returns the log so far as a string. With
        ``follow=True`` it returns a :class:`LogStream`, an iterator of the
        log's lines as they are written (each ending in ``"\\n"`` but
        perhaps the last) that ends when the attempt ends; a task that has
        not started yet is waited for. Close it (or use ``with``) to stop
        early.

        Raises ``APIError`` 404 for an unknown task or attempt, 410
        ``gone`` once the node's log retention removed it.

        >>> print(c.logs(job.id, task=3))
        >>> with c.logs(job.id, follow=True) as lines:
        ...     for line in lines:
        ...         print(line, end="")
        """
        path = "/jobs/%s/tasks/%d/logs" % (self._id(job_id), int(task))
        query: Dict[str, Any] = {"attempt": attempt}
        if not follow:
            with self._open("GET", path, query=query) as resp:
                return resp.read().decode("utf-8", "replace")
        query["follow"] = "1"
        return LogStream(self._open("GET", path, query=query, timeout=None))


class LogStream:
    """The lines of a followed log, as an iterator (see ``Client.logs``).

    ``attempt`` is the attempt being followed (``None`` when the task ended
    without one). ``chunks()`` yields text as it arrives instead of lines.
    """

    def __init__(self, resp):
        self._resp = resp
        a = resp.headers.get("X-Gantry-Attempt")
        self.attempt: Optional[int] = int(a) if a and a.isdigit() else None
        self._dec = codecs.getincrementaldecoder("utf-8")("replace")
        self._lines = self._iter_lines()

    def chunks(self) -> Iterator[str]:
        """Yields the log's text in pieces as the server sends them."""
        try:
            while True:
                b = self._resp.read1(64 << 10)
                if not b:
                    tail = self._dec.decode(b"", final=True)
                    if tail:
                        yield tail
                    return
                s = self._dec.decode(b)
                if s:
                    yield s
        finally:
            self.close()

    def _iter_lines(self) -> Iterator[str]:
        buf = ""
        for s in self.chunks():
            buf += s
            while True:
                i = buf.find("\n")
                if i < 0:
                    break
                yield buf[: i + 1]
                buf = buf[i + 1:]
        if buf:
            yield buf

    def __iter__(self) -> "LogStream":
        return self

    def __next__(self) -> str:
        return next(self._lines)

    def close(self) -> None:
        """Stops following and closes the connection."""
        self._resp.close()

    def __enter__(self) -> "LogStream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
