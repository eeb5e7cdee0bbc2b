"""Gantry from Python, in cells (run it whole, or cell by cell in a notebook
or an editor that knows `# %%`).

    export GANTRY_ADDR=http://127.0.0.1:7070
    export GANTRY_TOKEN=...        # gantry login, or DATA/admin-token
    python3 examples/quickstart.py
"""

# %% Connect. Client() reads GANTRY_ADDR and GANTRY_TOKEN; Client(addr, token)
# names them, and client.login(user, password) signs in with a password.
import gantry

client = gantry.Client()
print("signed in to", client.addr, "as", client.me().name)

# %% Submit an array job: five tasks of the toolbox image that ships with
# every Gantry, each printing its environment. 100 millicores and 16 MiB each.
job = client.submit(
    "gantry/toolbox",
    ["env"],
    name="quickstart",
    array=5,
    cpu=100,
    memory="32Mi",
    labels={"example": "quickstart"},
)
print("submitted", job.id, "with", job.total, "tasks")

# %% Wait for it, printing progress each time the task counts change.


def show(counts):
    print("  " + ", ".join("%s %d" % (state, n) for state, n in counts.items() if n))


job = client.wait(job.id, progress=show, timeout=300)
print("job ended:", job.state)

# %% Every task's exit code, and what one task printed.
for task in client.tasks(job.id):
    print("task", task.index, "on", task.node, "exited", task.exit_code)
index_line = [l for l in client.logs(job.id, task=2).splitlines() if l.startswith("GANTRY_TASK_INDEX=")]
print("task 2 says:", index_line[0])

# %% Follow a log as it is written.
ticker = client.submit("gantry/toolbox", ["tick", "100ms", "300ms"], cpu=100, memory="32Mi")
with client.logs(ticker.id, follow=True) as lines:
    for line in lines:
        print("  live:", line, end="")

# %% Refusals raise gantry.APIError with the HTTP status, a stable code and
# a message for people.
try:
    client.submit("gantry/toolbox", ["echo"], cpu=-1)
except gantry.APIError as e:
    print("refused:", e.status, e.code, "-", e.message)

# %% The newest jobs with the example's name.
for j in client.jobs(q="quickstart", limit=5):
    print(j.id, j.spec.name, j.state, j.counts["succeeded"], "/", j.total)
