"""The run's history: JSON lines, one event each, appended under a lock by
the client threads and the fault thread (docs/chaos.md "Workload and
history").  Times are time.monotonic() seconds of the harness."""
import json
import threading
import time


class History:
    def __init__(self, path):
        self.f = open(path, "w")
        self.lock = threading.Lock()

    def write(self, ev, **fields):
        fields["ev"] = ev
        fields.setdefault("t", time.monotonic())
        line = json.dumps(fields, sort_keys=True)
        with self.lock:
            self.f.write(line + "\n")
            self.f.flush()
        return fields

    def close(self):
        with self.lock:
            self.f.close()


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]
