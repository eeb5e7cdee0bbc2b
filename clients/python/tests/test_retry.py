"""Retries of 503 answers, against a fake server (a real one answers 503
only during an election or start-up, which the e2e tests cannot time)."""

import http.server
import json
import threading
import unittest

import gantry

JOB = {"id": "J1", "owner": "alice", "state": "queued", "spec": {"image": "gantry/toolbox"},
       "counts": {"queued": 1}, "total": 1, "submitted": "2026-01-02T03:04:05.123456789Z"}


class FakeGantry(http.server.BaseHTTPRequestHandler):
    """Answers 503 to the first `unavailable` requests, then 200 with JOB;
    records every request's method, path and idempotency key."""

    def log_message(self, *args):
        pass

    def _answer(self):
        srv = self.server
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        srv.seen.append((self.command, self.path, self.headers.get("Idempotency-Key"), body))
        if len(srv.seen) <= srv.unavailable:
            b = json.dumps({"error": "no leader", "code": "unavailable"}).encode()
            self.send_response(503)
            self.send_header("Retry-After", "0")
        else:
            b = json.dumps(JOB).encode()
            self.send_response(201 if self.command == "POST" else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)

    do_GET = do_POST = _answer


class TestRetry(unittest.TestCase):
    def setUp(self):
        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeGantry)
        self.srv.seen, self.srv.unavailable = [], 0
        self.thread = threading.Thread(target=self.srv.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()
        self.addCleanup(self.thread.join)
        self.addCleanup(self.srv.server_close)
        self.addCleanup(self.srv.shutdown)
        self.c = gantry.Client("127.0.0.1:%d" % self.srv.server_address[1], token="t", retry_for=10)

    def test_a_read_is_retried_through_503(self):
        self.srv.unavailable = 2
        j = self.c.job("J1")
        self.assertEqual(j.id, "J1")
        self.assertEqual(j.submitted.microsecond, 123456)
        self.assertEqual([s[0] for s in self.srv.seen], ["GET"] * 3)

    def test_a_submission_is_retried_with_the_same_key(self):
        self.srv.unavailable = 2
        self.c.submit("gantry/toolbox", ["echo", "hi"], cpu=100)
        keys = [s[2] for s in self.srv.seen]
        self.assertEqual(len(keys), 3)
        self.assertTrue(keys[0] and len(set(keys)) == 1, keys)
        self.assertEqual(json.loads(self.srv.seen[0][3]),
                         {"image": "gantry/toolbox", "command": ["echo", "hi"], "cpu": 100})

    def test_each_submission_has_its_own_key(self):
        self.c.submit("gantry/toolbox")
        self.c.submit("gantry/toolbox")
        self.assertNotEqual(self.srv.seen[0][2], self.srv.seen[1][2])

    def test_an_unkeyed_write_is_not_retried(self):
        self.srv.unavailable = 1
        with self.assertRaises(gantry.APIError) as cm:
            self.c.cancel("J1")
        self.assertEqual((cm.exception.status, cm.exception.code, cm.exception.message),
                         (503, "unavailable", "no leader"))
        self.assertEqual(len(self.srv.seen), 1)

    def test_retries_stop_after_retry_for(self):
        self.srv.unavailable = 10**6
        self.c.retry_for = 0.5
        with self.assertRaises(gantry.APIError) as cm:
            self.c.job("J1")
        self.assertEqual(cm.exception.status, 503)
        self.assertGreater(len(self.srv.seen), 1)
        self.assertLess(len(self.srv.seen), 20)


if __name__ == "__main__":
    unittest.main()
