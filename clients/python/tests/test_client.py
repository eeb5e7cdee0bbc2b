"""The client against a real Gantry server.

The server is named by GANTRY_ADDR and GANTRY_TOKEN (a user's API token);
GANTRY_TEST_USER and GANTRY_TEST_PASSWORD are that user's credentials.
e2e/python_test.go starts a server, creates the user and runs these tests
with the client installed from clients/python. Without GANTRY_ADDR they are
skipped, unless CI=true, where that is an error.
"""

import os
import socket
import subprocess
import sys
import time
import unittest
import uuid

import gantry

TOOLBOX = "gantry/toolbox"
SMALL = {"cpu": 100, "memory": "32Mi"}
EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def setUpModule():
    if not os.environ.get("GANTRY_ADDR") or not os.environ.get("GANTRY_TOKEN"):
        msg = "GANTRY_ADDR and GANTRY_TOKEN must name a running Gantry server (e2e/python_test.go sets them)"
        if os.environ.get("CI") == "true":
            raise RuntimeError(msg)
        raise unittest.SkipTest(msg)


def eventually(cond, timeout=60.0, what="condition"):
    """Polls cond until it returns a true value or timeout passes."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))
        time.sleep(0.05)  # polling interval, not a wait for a state


class ClientTest(unittest.TestCase):
    def setUp(self):
        self.c = gantry.Client()
        self.started = []

    def tearDown(self):
        # Nothing a failed test submitted keeps running.
        for j in self.started:
            try:
                if not self.c.job(j).done:
                    self.c.cancel(j)
            except gantry.GantryError:
                pass

    def submit(self, *args, **kw):
        j = self.c.submit(*args, **kw)
        self.started.append(j.id)
        return j


class TestLogin(ClientTest):
    def test_login_keeps_the_token_it_returns(self):
        user, pw = os.environ["GANTRY_TEST_USER"], os.environ["GANTRY_TEST_PASSWORD"]
        c = gantry.Client(os.environ["GANTRY_ADDR"], token="")
        with self.assertRaises(gantry.APIError) as cm:
            c.me()
        self.assertEqual(cm.exception.status, 401)
        tok = c.login(user, pw)
        self.assertTrue(tok)
        self.assertEqual(c.token, tok)
        self.assertEqual(c.me().name, user)
        # The token works for a client made from it alone.
        self.assertEqual(gantry.Client(os.environ["GANTRY_ADDR"], token=tok).me().name, user)

    def test_a_wrong_password_is_refused_with_unauthorized(self):
        c = gantry.Client(os.environ["GANTRY_ADDR"], token="")
        with self.assertRaises(gantry.APIError) as cm:
            c.login(os.environ["GANTRY_TEST_USER"], "not-the-password")
        self.assertEqual((cm.exception.status, cm.exception.code), (401, "unauthorized"))
        self.assertIsNone(c.token)


class TestJobs(ClientTest):
    def test_submit_and_wait_report_progress_of_an_array_job(self):
        name = "py-array-" + uuid.uuid4().hex[:8]
        job = self.submit(TOOLBOX, ["echo", "hi"], name=name, array=5, labels={"suite": "python"}, **SMALL)
        self.assertEqual(job.total, 5)
        self.assertEqual(job.spec.name, name)
        self.assertEqual(job.spec.memory, 32 << 20)
        self.assertEqual(job.spec.labels, {"suite": "python"})
        seen = []
        done = self.c.wait(job.id, progress=seen.append, timeout=120)
        self.assertEqual(done.state, "succeeded")
        self.assertTrue(done.succeeded and done.done)
        self.assertEqual(done.counts["succeeded"], 5)
        self.assertIsNotNone(done.ended)
        self.assertGreaterEqual(len(seen), 2, "progress saw the counts change: %r" % seen)
        self.assertEqual(seen[-1]["succeeded"], 5)
        self.assertLess(seen[0]["succeeded"], 5)
        for a, b in zip(seen, seen[1:]):
            self.assertNotEqual(a, b, "progress is called only when the counts change")
        for counts in seen:
            self.assertEqual(sum(counts.values()), 5, counts)

        self.assertEqual(self.c.logs(job.id), "hi\n")
        self.assertEqual(self.c.logs(job.id, task=4), "hi\n")
        with self.c.logs(job.id, task=3, follow=True) as lines:
            self.assertEqual(list(lines), ["hi\n"])
            self.assertEqual(lines.attempt, 1)
        with self.assertRaises(gantry.APIError) as cm:
            self.c.logs(job.id, task=5)
        self.assertEqual((cm.exception.status, cm.exception.code), (404, "not_found"))

        tasks = self.c.tasks(job.id)
        self.assertEqual([t.index for t in tasks], [0, 1, 2, 3, 4])
        self.assertTrue(all(t.state == "succeeded" and t.exit_code == 0 for t in tasks), tasks)
        t = self.c.task(job.id, 2)
        self.assertEqual(len(t.attempt_list), 1)
        self.assertEqual((t.attempt_list[0].reason, t.attempt_list[0].exit_code), ("exited", 0))

    def test_follow_streams_lines_while_the_task_runs(self):
        job = self.submit(TOOLBOX, "tick 200ms 2s", **SMALL)
        with self.c.logs(job.id, follow=True) as lines:
            first = next(lines)
            running = not self.c.job(job.id).done
            rest = list(lines)
        self.assertEqual(first, "tick 1\n")
        self.assertTrue(running, "the first line arrived before the task ended")
        self.assertGreaterEqual(len(rest), 3)
        self.assertTrue(all(l.startswith("tick ") and l.endswith("\n") for l in rest), rest)
        # The stream ended because the attempt did.
        self.assertTrue(self.c.wait(job.id, timeout=60).done)

    def test_jobs_lists_newest_first_across_pages(self):
        tag = "py-list-" + uuid.uuid4().hex[:8]
        # Held behind a job that never succeeds, they use no container.
        blocker = self.submit(TOOLBOX, ["sleep", "120"], name=tag + "-blocker", **SMALL)
        ids = [self.submit(TOOLBOX, ["true"], name="%s-%d" % (tag, i), after=[blocker], **SMALL).id
               for i in range(3)]
        newest = list(reversed(ids))
        listed = [j.id for j in self.c.jobs(q=tag + "-", page_size=1) if j.id != blocker.id]
        self.assertEqual(listed, newest, "one job a page, the cursor followed to the end")
        self.assertEqual([j.id for j in self.c.jobs(q=tag + "-", limit=2)], newest[:2])
        self.assertEqual(list(self.c.jobs(q=tag, limit=0)), [])
        self.assertEqual({j.id for j in self.c.jobs(state="queued", q=tag)}, set(ids))
        self.assertEqual(self.c.job(ids[0]).spec.after, [blocker.id])
        # Cancelling what they wait for fails them at once.
        self.c.cancel(blocker)
        for i in ids:
            self.assertEqual(self.c.wait(i, timeout=60).state, "failed")
        self.assertEqual({j.id for j in self.c.jobs(state="failed", q=tag)}, set(ids))
        self.assertEqual(list(self.c.jobs(state="queued", q=tag)), [])

    def test_cancel_stops_a_running_job(self):
        job = self.submit(TOOLBOX, ["sleep", "120"], **SMALL)
        eventually(lambda: self.c.job(job.id).state == "running", what="the job to run")
        j = self.c.cancel(job.id)
        self.assertTrue(j.cancel_requested)
        j = self.c.wait(job.id, timeout=60)
        self.assertEqual(j.state, "cancelled")
        self.assertEqual(self.c.task(job.id, 0).attempt_list[-1].reason, "cancelled")

    def test_wait_gives_up_at_its_timeout(self):
        job = self.submit(TOOLBOX, ["sleep", "120"], **SMALL)
        t0 = time.monotonic()
        with self.assertRaises(gantry.WaitTimeout) as cm:
            self.c.wait(job.id, timeout=1.0)
        self.assertLess(time.monotonic() - t0, 10)
        self.assertFalse(cm.exception.job.done)
        self.assertIsInstance(cm.exception, TimeoutError)

    def test_rerun_runs_the_failed_tasks_again(self):
        job = self.submit(TOOLBOX, ["fail-tasks", "1", "4"], array=2, **SMALL)
        j = self.c.wait(job.id, timeout=120)
        self.assertEqual((j.state, j.counts["failed"], j.counts["succeeded"]), ("failed", 1, 1))
        self.assertEqual(self.c.task(job.id, 1).exit_code, 4)
        r = self.c.rerun(job.id, failed=True)
        self.assertEqual(r.tasks, [1])
        self.assertFalse(r.job.done)
        j = self.c.wait(job.id, timeout=120)
        self.assertEqual(j.state, "succeeded")
        self.assertEqual(self.c.task(job.id, 1).attempts, 2)
        self.assertEqual(self.c.task(job.id, 0).attempts, 1)
        with self.assertRaises(gantry.APIError) as cm:
            self.c.rerun(job.id, failed=True)
        self.assertEqual((cm.exception.status, cm.exception.code), (409, "conflict"))


class TestData(ClientTest):
    def test_outputs_are_listed_downloaded_and_read_by_the_next_job(self):
        job = self.submit(TOOLBOX, ["task-output", "/out"], array=2, output="/out", **SMALL)
        j = self.c.wait(job.id, timeout=120)
        self.assertEqual(j.state, "succeeded")
        self.assertEqual(j.spec.output, "/out")
        outs = self.c.outputs(job.id)
        self.assertEqual([o.task for o in outs], [0, 1])
        self.assertEqual(outs[1].files, 3)
        self.assertTrue(outs[1].ref.endswith("@" + outs[1].digest))
        d = os.path.join(os.environ.get("TMPDIR", "/tmp"), "gantry-py-" + uuid.uuid4().hex)
        names = self.c.download_output(job.id, 1, d)
        self.assertEqual(sorted(names), ["empty", "nested/deeper/index", "task.txt"])
        with open(os.path.join(d, "task.txt")) as f:
            self.assertTrue(f.read().startswith("task 1 of 2, job " + job.id))
        # Task i of the next job reads task i's output (n-to-n).
        nxt = self.submit(TOOLBOX, ["cat", "/in/nested/deeper/index"], array=2, inputs={"/in": "job:" + job.id},
                          deps=[{"job": job.id, "kind": "n-to-n"}], **SMALL)
        self.assertEqual(self.c.wait(nxt.id, timeout=120).state, "succeeded")
        self.assertEqual(self.c.logs(nxt.id, task=1), "1\n")

    def test_an_output_limit_without_an_output_is_refused_before_sending(self):
        with self.assertRaises(ValueError):
            self.c.submit(TOOLBOX, ["true"], output_limit="1Gi")


class TestRefusals(ClientTest):
    def test_a_negative_cpu_is_refused_as_invalid(self):
        with self.assertRaises(gantry.APIError) as cm:
            self.submit(TOOLBOX, ["echo"], cpu=-1)
        e = cm.exception
        self.assertEqual((e.status, e.code), (400, "invalid"))
        self.assertIn("cpu", e.message)
        self.assertEqual(str(e), e.message)

    def test_an_image_that_does_not_exist_is_refused_as_invalid(self):
        with self.assertRaises(gantry.APIError) as cm:
            self.submit("nobody/no-such-image:1", ["echo"])
        self.assertEqual((cm.exception.status, cm.exception.code), (400, "invalid"))
        self.assertIn("not found", cm.exception.message)

    def test_an_unknown_field_is_refused_before_sending(self):
        with self.assertRaises(TypeError):
            self.c.submit(TOOLBOX, ["echo"], cpus=2)

    def test_an_unknown_job_is_not_found(self):
        with self.assertRaises(gantry.APIError) as cm:
            self.c.job("01NOSUCHJOB0000000000000000")
        self.assertEqual((cm.exception.status, cm.exception.code), (404, "not_found"))

    def test_a_bad_token_is_unauthorized(self):
        with self.assertRaises(gantry.APIError) as cm:
            list(gantry.Client(token="not-a-token").jobs(limit=1))
        self.assertEqual((cm.exception.status, cm.exception.code), (401, "unauthorized"))

    def test_an_unreachable_server_raises_connect_error(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()  # nothing listens there now
        c = gantry.Client("127.0.0.1:%d" % port, token="x", retry_for=0)
        with self.assertRaises(gantry.ConnectError) as cm:
            c.job("x")
        self.assertIn("cannot reach Gantry at http://127.0.0.1:%d" % port, str(cm.exception))
        self.assertIsInstance(cm.exception, ConnectionError)


class TestExamples(unittest.TestCase):
    def test_the_quickstart_runs(self):
        p = subprocess.run([sys.executable, os.path.join(EXAMPLES, "quickstart.py")],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=180)
        out = p.stdout.decode("utf-8", "replace")
        self.assertEqual(p.returncode, 0, out)
        self.assertIn("job ended: succeeded", out)
        self.assertIn("task 2 says: GANTRY_TASK_INDEX=2", out)
        self.assertIn("refused: 400 invalid", out)


if __name__ == "__main__":
    unittest.main()
