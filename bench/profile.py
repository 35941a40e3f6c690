"""Where the operator's CPU goes: py-spy samples of one create and one policy edit.

    python bench/profile.py [--users 1000] [--out bench/results/profile] [--native]

Starts the same stack as ``bench_operator.py`` (a control plane, LiteLLM, the operator limited
to a fresh namespace), then records the operator with ``py-spy record --gil`` (only samples
holding the interpreter, i.e. Python's own work, not waiting) while N LiteLLMUsers are created
until all are Ready, and again while a policy edit rolls out to them. Writes each profile as
collapsed stacks (``create.txt``, ``policy_edit.txt``: one line per stack and its samples, for
flame graph tools or grep) and prints, per scenario, the functions with the most samples,
inclusive and by themselves. py-spy attaches to a running process: it needs ptrace (root, or
``kernel.yama.ptrace_scope`` 0).
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "operator"))

import yaml  # noqa: E402

from bench.bench_operator import (  # noqa: E402
    BUDGET_AFTER,
    BUDGET_BEFORE,
    kubectl,
    operator_env,
    policy_doc,
    stack,
    user_doc,
)
from bench.measure import UserWatch  # noqa: E402
from litellm_operator.models import GROUP, USER_PLURAL, VERSION  # noqa: E402
from tests.e2e.operator_harness import OperatorProcess  # noqa: E402

TOP = 30


class Recording:
    """``py-spy record`` on ``pid`` while the block runs, collapsed stacks into ``path``."""

    def __init__(self, pid: int, path: Path, native: bool) -> None:
        self.command = [
            str(Path(sys.executable).with_name("py-spy")),
            "record", "--pid", str(pid), "--gil", "--rate", "200", "--format", "raw",
            "--output", str(path), *(["--native"] if native else []),
        ]  # fmt: skip

    def __enter__(self) -> Recording:
        self.proc = subprocess.Popen(self.command, stdout=subprocess.DEVNULL)
        time.sleep(1)  # attached
        return self

    def __exit__(self, *_: object) -> None:
        self.proc.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        self.proc.wait(timeout=120)


def frame_name(frame: str) -> str:
    """``function (path/to/module.py:line)`` → ``function (module.py)``: lines merged."""
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rsplit('/', 1)[-1].split(':', 1)[0]})" if where else name


def summary(path: Path) -> dict[str, list[tuple[str, float]]]:
    """The functions with most samples in a collapsed profile, as shares of all samples."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        samples = int(count)
        frames = [frame_name(f) for f in stack.split(";")]
        total += samples
        own[frames[-1]] += samples
        for frame in set(frames):
            inclusive[frame] += samples
    share = {
        "inclusive": [(f, round(100 * n / total, 1)) for f, n in inclusive.most_common(TOP)],
        "self": [(f, round(100 * n / total, 1)) for f, n in own.most_common(TOP)],
    }
    return {"samples": [("all", float(total))], **share}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "profile")
    parser.add_argument("--native", action="store_true", help="C frames too (py-spy --native)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    n = args.users
    with stack() as (workdir, kubeconfig, endpoint, _):
        stem = uuid.uuid4().hex[:6]
        namespace = policy = f"profile-{stem}"
        kubectl(kubeconfig, "create", "namespace", namespace)
        operator = OperatorProcess(
            operator_env(kubeconfig, endpoint, namespace), workdir / "operator.log"
        )
        watch = UserWatch(kubeconfig, GROUP, VERSION, USER_PLURAL, namespace)
        watch.start()
        operator.start()
        assert operator.proc is not None
        try:
            doc = yaml.safe_dump(policy_doc(policy, namespace, BUDGET_BEFORE))
            kubectl(kubeconfig, "apply", "-f", "-", stdin=doc)
            users = [user_doc(namespace, f"{stem}-u{i:05d}", policy) for i in range(n)]
            with Recording(operator.proc.pid, args.out / "create.txt", args.native):
                kubectl(kubeconfig, "create", "-f", "-", stdin=yaml.safe_dump_all(users))
                watch.wait(lambda: watch.ready() == n, timeout=max(300, n), what="all Ready")
            edit = json.dumps({"spec": {"defaults": {"maxBudget": BUDGET_AFTER}}})
            with Recording(operator.proc.pid, args.out / "policy_edit.txt", args.native):
                kubectl(kubeconfig, "patch", "llmpolicy", policy, "--type=merge", "-p", edit)
                watch.wait(lambda: watch.ready(2) == n, timeout=max(300, n), what="rolled out")
        finally:
            operator.stop()
            watch.stop()
    found = {s: summary(args.out / f"{s}.txt") for s in ("create", "policy_edit")}
    (args.out / "summary.json").write_text(json.dumps(found, indent=1) + "\n")
    for scenario, tables in found.items():
        print(f"== {scenario}: {int(tables['samples'][0][1])} samples holding the GIL")
        for kind in ("inclusive", "self"):
            print(f"-- {kind} %")
            for frame, pct in tables[kind]:
                print(f"{pct:6.1f}  {frame}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
