"""The code sandbox (fusekit.preference.sandbox): statuses, limits, and nothing left running.

Time limits are 1-2 s so the file runs in a few seconds.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pandas as pd
import pytest

from fusekit.preference import code_test_results, extract_code, run_code, run_many

ADD = "def add(a, b):\n    return a + b\n"
TESTS = "assert add(1, 2) == 3\nassert add(-1, 1) == 0\n"


def live_in_group(pgid: int) -> list[int]:
    """Pids of processes in process group ``pgid`` that are not zombies."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        state, pgrp = fields[0], int(fields[2])
        if pgrp == pgid and state != "Z":
            pids.append(int(entry))
    return pids


def is_running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_passing_solution():
    r = run_code(ADD, TESTS, timeout=2)
    assert (r.status, r.passed, r.returncode) == ("passed", True, 0)
    assert 0 < r.seconds < 2


def test_failing_assertion():
    r = run_code("def add(a, b):\n    return a - b\n", TESTS, timeout=2)
    assert (r.status, r.passed) == ("failed", False)
    assert "AssertionError" in r.stderr_tail and "tests.py" in r.stderr_tail


def test_syntax_error_is_an_error():
    r = run_code("def add(a, b)\n    return a + b\n", TESTS, timeout=2)
    assert (r.status, r.passed) == ("error", False)
    assert "SyntaxError" in r.stderr_tail


def test_exception_and_early_exit_are_errors():
    r = run_code("def add(a, b):\n    return a + None\n", TESTS, timeout=2)
    assert r.status == "error" and "TypeError" in r.stderr_tail
    # exit(0) before the tests must not count as passing
    r = run_code("import sys\nsys.exit(0)\n", "assert False\n", timeout=2)
    assert r.status == "error" and "before its tests ran" in r.stderr_tail


def test_unittest_main_in_the_tests():
    tests = (
        "import unittest\n"
        "class T(unittest.TestCase):\n"
        "    def test_add(self):\n"
        "        self.assertEqual(add(2, 2), 4)\n"
        "unittest.main()\n"
    )
    assert run_code(ADD, tests, timeout=2).status == "passed"
    assert run_code("def add(a, b):\n    return 5\n", tests, timeout=2).status == "failed"


def test_main_guarded_demo_code_is_not_run():
    code = ADD + "if __name__ == '__main__':\n    input()\n"  # stdin is /dev/null
    assert run_code(code, TESTS, timeout=2).status == "passed"


def test_infinite_loop_is_killed_within_the_limit():
    start = time.monotonic()
    r = run_code("while True:\n    pass\n", "", timeout=1.0)
    took = time.monotonic() - start
    assert r.status == "timeout" and not r.passed
    assert 1.0 <= r.seconds < 1.5 and took < 2.0


def test_sleeping_program_is_killed_by_wall_time():
    r = run_code("import time\ntime.sleep(60)\n", "", timeout=1.0)
    assert r.status == "timeout" and r.seconds < 1.5


def test_cpu_limit_kills_before_the_wall_limit():
    r = run_code("while True:\n    pass\n", "", timeout=10.0, cpu_seconds=1)
    assert r.status == "timeout" and r.seconds < 3


@pytest.mark.parametrize(
    "bomb",
    ["x = bytearray(10 ** 10)\n", "a = []\nwhile True:\n    a.append(' ' * 10 ** 6)\n"],
)
def test_memory_bomb_is_stopped(bomb):
    r = run_code(bomb, "", timeout=2.0, memory_mb=256)
    assert r.status == "memory" and r.seconds < 2.0
    assert "MemoryError" in r.stderr_tail


@pytest.mark.parametrize(
    "attempt",
    [
        "import socket\nsocket.create_connection(('127.0.0.1', 9), timeout=1)\n",
        "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n",
        "import _socket\ns = _socket.socket()\n",
        "import socket\nsocket.getaddrinfo('example.com', 80)\n",
        "import urllib.request\nurllib.request.urlopen('http://127.0.0.1:9/', timeout=1)\n",
    ],
)
def test_network_is_blocked(attempt):
    r = run_code(attempt, "", timeout=2.0)
    assert r.status == "error"
    assert "network access is disabled" in r.stderr_tail


def test_subclassing_socket_still_imports():
    # libraries that subclass socket.socket at import time keep working
    code = "import socket\nclass S(socket.socket):\n    pass\n" + ADD
    assert run_code(code, TESTS, timeout=2).status == "passed"


def test_no_proxy_or_credentials_in_the_environment(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy:3128")
    monkeypatch.setenv("SECRET_TOKEN", "abc")
    code = "import os\nprint(sorted(os.environ))\n"
    r = run_code(code, "", timeout=2)
    assert r.status == "passed"
    assert "HTTPS_PROXY" not in r.stdout_tail and "SECRET_TOKEN" not in r.stdout_tail
    assert "'HOME'" in r.stdout_tail


def test_output_spam_is_truncated():
    spam = "for i in range(200000):\n    print('spam', i)\n"
    r = run_code(spam + ADD, TESTS, timeout=2, output_chars=100)
    assert r.status == "passed"
    assert r.stdout_tail.startswith("[... ") and r.stdout_tail.endswith("spam 199999\n")
    assert len(r.stdout_tail) < 100 + 40


def test_endless_output_hits_the_file_size_limit():
    r = run_code("while True:\n    print('x' * 1000)\n", "", timeout=5, max_file_mb=1)
    assert r.status == "error" and "File too large" in r.stderr_tail
    assert r.seconds < 5


def test_nothing_is_left_running_after_a_timeout():
    code = (
        "import os, subprocess\n"
        "child = subprocess.Popen(['sleep', '60'])\n"
        "print(os.getpgid(0), child.pid, flush=True)\n"
        "while True:\n    pass\n"
    )
    r = run_code(code, "", timeout=1.0)
    assert r.status == "timeout"
    pgid, child = map(int, r.stdout_tail.split())
    assert not is_running(child)
    assert live_in_group(pgid) == []


def test_children_die_with_a_program_that_ends_normally():
    code = (
        "import os, subprocess\n"
        "child = subprocess.Popen(['sleep', '60'])\n"
        "print(os.getpgid(0), child.pid, flush=True)\n" + ADD
    )
    r = run_code(code, TESTS, timeout=2.0)
    assert r.status == "passed"
    pgid, child = map(int, r.stdout_tail.split())
    assert not is_running(child) and live_in_group(pgid) == []


def test_working_directory_is_temporary_and_removed():
    r = run_code("import os\nprint(os.getcwd())\nopen('f.txt', 'w').write('x')\n", "", timeout=2)
    assert r.status == "passed"
    workdir = r.stdout_tail.strip()
    assert "fusekit-sandbox-" in workdir and not os.path.exists(workdir)


def test_run_many_keeps_order_with_a_pool():
    jobs = [(ADD, TESTS), ("def add(a, b):\n    return 0\n", TESTS), ("while 1: pass\n", "")]
    results = run_many(jobs, workers=2, timeout=1.0)
    assert [r.status for r in results] == ["passed", "failed", "timeout"]
    with pytest.raises(ValueError, match="workers"):
        run_many(jobs, workers=0)


def test_extract_code():
    reply = (
        "Here is an example:\n```python\nadd(1, 2)\n```\n"
        "And the solution:\n```python\ndef add(a, b):\n    return a + b\n```\nDone."
    )
    assert extract_code(reply) == "def add(a, b):\n    return a + b\n"
    assert extract_code("```js\nlet x = 1\n```") == "```js\nlet x = 1\n```"  # no python block
    assert extract_code(ADD) == ADD
    assert extract_code("```\n" + ADD) == ADD  # an unclosed fence runs to the end


def test_code_test_results_table():
    gens = pd.DataFrame(
        {
            "prompt_id": ["c1", "c1", "c1", "c2"],
            "model": ["A", "A", "B", "A"],
            "sample": [0, 1, 0, 0],
            "response": ["```python\n" + ADD + "```", "while True: pass", "  ", ADD],
        }
    )
    tests = pd.DataFrame({"prompt_id": ["c1", "c2"], "tests": [TESTS, "assert add(2, 2) == 5"]})
    out = code_test_results(gens, tests, timeout=1.0)
    assert out.status.tolist() == ["passed", "timeout", "error", "failed"]
    assert out.passed.tolist() == [True, False, False, False]
    assert out.stderr_tail[2] == "empty response (not run)"
    assert out.attrs["statuses"] == {
        "passed": 1,
        "failed": 1,
        "error": 0,
        "timeout": 1,
        "memory": 0,
        "empty": 1,
    }
    with pytest.raises(ValueError, match=r"no tests for prompts \['c2'\]"):
        code_test_results(gens, tests.iloc[:1])


def test_limits_are_set_inside():
    code = (
        "import resource\n"
        "print(resource.getrlimit(resource.RLIMIT_AS)[0] >> 20,"
        " resource.getrlimit(resource.RLIMIT_CPU)[0],"
        " resource.getrlimit(resource.RLIMIT_FSIZE)[0] >> 20)\n"
    )
    r = run_code(code, "", timeout=2.5, memory_mb=300, max_file_mb=3)
    assert r.status == "passed"
    assert r.stdout_tail.split() == ["300", "4", "3"]  # cpu = ceil(2.5) + 1


def test_child_processes_lose_the_network_where_namespaces_are_available():
    """The socket prelude does not reach a child process; the empty network namespace
    does. Skipped where the kernel refuses the namespace (not root / no CAP_SYS_ADMIN)."""
    import socket

    ns = run_code("import os\nprint(os.readlink('/proc/self/ns/net'))\n", "", timeout=2)
    if ns.stdout_tail.strip() == os.readlink("/proc/self/ns/net"):
        pytest.skip("no network namespace here: only the in-process socket prelude applies")
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    port = server.getsockname()[1]
    probe = f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=1)"
    code = (
        "import subprocess, sys\n"
        f"rc = subprocess.run([sys.executable, '-c', {probe!r}]).returncode\n"
        "print('probe', rc)\n"
    )
    try:
        outside = subprocess.run([sys.executable, "-c", probe]).returncode
        r = run_code(code, "", timeout=3)
    finally:
        server.close()
    assert outside == 0  # the port is reachable without the sandbox
    assert r.status == "passed"
    assert r.stdout_tail.split()[0] == "probe" and r.stdout_tail.split()[1] != "0"
