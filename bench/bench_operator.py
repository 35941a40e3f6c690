"""Benchmark: the operator against floors measured in the same run, on the same LiteLLM.

For each N (``--users 100,1000`` by default; ``BENCH_USERS=10000`` through make) a fresh
operator, limited to a fresh namespace, runs five scenarios:

1. **create**: ``kubectl create`` N LiteLLMUsers, until all are Ready. Floor: a bare httpx
   client sending ``/user/info`` (404) and ``/user/new`` with the operator's own body.
2. **resync**: two resync intervals in steady state: LiteLLM calls and writes, Kubernetes
   writes (goal: no write of either kind).
3. **policy edit**: the policy's ``defaults.maxBudget`` changes, until all N users are Ready for
   the new policy generation (then LiteLLM is checked to hold the new budget for every one).
   Floor: N ``/user/update`` calls with the operator's own body (the goal's floor), and beside
   it the same bodies as the ``/user/bulk_update`` calls the operator's coalesced writes make.
4. **restart**: the operator restarts; time until it has resumed all N users, its LiteLLM
   calls meanwhile (paged ``/user/list`` reads, goal ≤ N/50) and its Kubernetes writes (goal 0).
5. **memory**: resident memory idle, right after the create, at rest after the resync
   (without a restart), after the policy edit, after the restart, and the restart's peak.

Every scenario also reports CPU seconds per process (operator, kube-apiserver, etcd, LiteLLM,
PostgreSQL; only the bench's own processes, the machine may be shared), the operator's per
1,000 users, the API server's own count of requests per verb and resource, and the operator's
LiteLLM calls per endpoint: the profile that says where time goes.

    python bench/bench_operator.py [--users 100,1000] [--out bench/results]
        [--rounds 3] [--baseline /path/to/another/checkout]

``--rounds`` repeats every size and reports the spread; ``--baseline`` runs another checkout's
operator (its ``operator/`` first on ``PYTHONPATH``) alternately with this one, in the same
stack, so both see the same machine load.

Needs KUBECONFIG or the envtest binaries (KUBEBUILDER_ASSETS, else they are built); uses
LITELLM_URL/LITELLM_MASTER_KEY when set, else starts the project's LiteLLM. Writes
``bench.json`` and ``bench.png`` to ``--out`` and exits 1 when a goal is missed
(``bench/goals.py``; judged on this checkout's runs, not the baseline's).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "operator"))

import httpx  # noqa: E402
import yaml  # noqa: E402

from bench import floors  # noqa: E402
from bench.goals import GOALS, missed  # noqa: E402
from bench.measure import (  # noqa: E402
    CpuMeter,
    RssPeak,
    UserWatch,
    apiserver_requests,
    difference,
    postmaster_pid,
    rss_kib,
    writes,
)
from devenv.controlplane import ControlPlane, find_assets  # noqa: E402
from devenv.litellm import Instance, InstanceState, LiteLLMEndpoint  # noqa: E402
from litellm_operator.litellm.writes import MAX_BATCH, MAX_FLIGHTS  # noqa: E402
from litellm_operator.models import API_VERSION, GROUP, USER_PLURAL, VERSION  # noqa: E402
from litellm_operator.users.context import SNAPSHOT_MAX_AGE_FRACTION  # noqa: E402
from tests.e2e.operator_harness import OperatorProcess, eventually, free_port  # noqa: E402

RESYNC_SECONDS = 30
CONCURRENCY = 8
BUDGET_BEFORE, BUDGET_AFTER = 10, 20


def kubectl(kubeconfig: Path, *args: str, stdin: str | None = None) -> str:
    return subprocess.run(
        ["kubectl", f"--kubeconfig={kubeconfig}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def policy_doc(name: str, namespace: str, budget: float) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "ProvisioningPolicy",
        "metadata": {"name": name},
        "spec": {
            "allowedNamespaces": [namespace],
            "identities": [{"namespaces": [namespace], "emails": ["*"], "userIds": ["*"]}],
            "defaults": {"maxBudget": budget, "models": ["gpt-4o-mini", "gpt-4o"]},
        },
    }


def user_doc(namespace: str, name: str, policy: str) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "LiteLLMUser",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"policyRef": policy, "email": f"{name}@bench.example.com"},
    }


def by_label(
    operator: OperatorProcess, counter: str, label: str, among: str = ""
) -> dict[str, int]:
    """A counter of the operator's so far, summed per value of ``label`` (only the samples
    whose labels contain ``among``)."""
    totals: dict[str, int] = {}
    for line in operator.metrics().splitlines():
        if line.startswith(counter + "{") and among in line:
            spec, value = line.rsplit(" ", 1)
            key = spec.split(f'{label}="', 1)[1].split('"', 1)[0]
            totals[key] = totals.get(key, 0) + int(float(value))
    return totals


def litellm_calls(operator: OperatorProcess) -> dict[str, int]:
    """The operator's LiteLLM requests so far, per endpoint."""
    return by_label(operator, "litellm_operator_litellm_requests_total", "endpoint")


def user_events(operator: OperatorProcess) -> dict[str, int]:
    """What became of the LiteLLMUser watch events kopf's processing got so far, per outcome
    (``litellm_operator_watch_events_total``: processed, superseded, settled, followed,
    finalized, created)."""
    counter = "litellm_operator_watch_events_total"
    return by_label(operator, counter, "outcome", f'resource="{USER_PLURAL}"')


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


class Scenario:
    """Measures one scenario: wall time, CPU per process, API server requests, LiteLLM calls."""

    def __init__(self, kubeconfig: Path, operator: OperatorProcess, cpu: CpuMeter) -> None:
        self.kubeconfig = kubeconfig
        self.operator = operator
        self.cpu = cpu

    submitted = 0.0

    def __enter__(self) -> Scenario:
        self.requests = apiserver_requests(self.kubeconfig, GROUP)
        self.calls = litellm_calls(self.operator)
        self.events = user_events(self.operator)
        self.cpu.start()
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.started
        self.cpu_seconds = self.cpu.stop()
        self.k8s = difference(apiserver_requests(self.kubeconfig, GROUP), self.requests)
        self.litellm = delta(litellm_calls(self.operator), self.calls)
        self.events = delta(user_events(self.operator), self.events)

    def report(self, n: int) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 2),
            "cpu_seconds": self.cpu_seconds,
            "operator_cpu_per_1000_users": round(
                self.cpu_seconds.get("operator", 0.0) * 1000 / n, 2
            ),
            "k8s_requests": self.k8s,
            "k8s_user_writes_per_user": round(writes(self.k8s, USER_PLURAL) / n, 2),
            "litellm_calls": self.litellm,
            "litellm_calls_per_user": round(sum(self.litellm.values()) / n, 2),
            "kopf_events_per_user": {k: round(v / n, 2) for k, v in sorted(self.events.items())},
        }


def litellm_budgets(url: str, key: str, user_ids: set[str]) -> dict[str, float | None]:
    headers = {"Authorization": f"Bearer {key}"}
    found: dict[str, float | None] = {}
    with httpx.Client(base_url=url, headers=headers, timeout=120) as http:
        page = 1
        while True:
            body = http.get("/user/list", params={"page": page, "page_size": 100}).json()
            for user in body.get("users") or []:
                if user["user_id"] in user_ids:
                    found[user["user_id"]] = user.get("max_budget")
            if page >= int(body.get("total_pages") or 1):
                return found
            page += 1


def operator_env(kubeconfig: Path, litellm: LiteLLMEndpoint, namespace: str) -> dict[str, str]:
    """The operator's environment: limited to ``namespace``, the bench's resync and concurrency."""
    return {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "LITELLM_URL": litellm.url,
        "LITELLM_MASTER_KEY": litellm.master_key.get_secret_value(),
        "LITELLM_OPERATOR_NAMESPACES": namespace,
        "LITELLM_OPERATOR_RESYNC_SECONDS": str(RESYNC_SECONDS),
        "LITELLM_OPERATOR_METRICS_PORT": str(free_port()),
        "LITELLM_OPERATOR_CONCURRENCY": str(CONCURRENCY),
    }


def run_size(
    kubeconfig: Path,
    litellm: LiteLLMEndpoint,
    n: int,
    workdir: Path,
    roots: Callable[[], set[int]],
    source: Path | None = None,
) -> dict[str, Any]:
    """One size's scenarios, with this checkout's operator or, given ``source``, that one's."""
    key = litellm.master_key.get_secret_value()
    stem = uuid.uuid4().hex[:6]
    namespace, policy = f"bench-{stem}", f"bench-{stem}"
    kubectl(kubeconfig, "create", "namespace", namespace)
    env = operator_env(kubeconfig, litellm, namespace)
    if source is not None:
        paths = [str(source / "operator"), env.get("PYTHONPATH", "")]
        env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    operator = OperatorProcess(env, workdir / f"operator-{n}-{stem}.log")
    cpu = CpuMeter(lambda: operator.proc.pid if operator.proc else None, roots)
    watch = UserWatch(kubeconfig, GROUP, VERSION, USER_PLURAL, namespace)
    watch.start()
    result: dict[str, Any] = {"users": n, "when": machine()["when"]}
    names = [f"{stem}-u{i:05d}" for i in range(n)]
    operator.start()
    try:
        assert operator.proc is not None
        kubectl(
            kubeconfig,
            "apply",
            "-f",
            "-",
            stdin=yaml.safe_dump(policy_doc(policy, namespace, BUDGET_BEFORE)),
        )
        # Idle means without the /user/list snapshot taken at start-up (it holds whatever
        # LiteLLM already has, earlier sizes included): measured once it has been let go.
        time.sleep(RESYNC_SECONDS * SNAPSHOT_MAX_AGE_FRACTION + 2)
        idle = rss_kib(operator.proc.pid)

        manifest = yaml.safe_dump_all([user_doc(namespace, name, policy) for name in names])
        with (
            RssPeak(lambda: operator.proc.pid if operator.proc else None) as create_peak,
            Scenario(kubeconfig, operator, cpu) as create,
        ):
            kubectl(kubeconfig, "create", "-f", "-", stdin=manifest)
            create.submitted = time.perf_counter() - create.started
            watch.wait(lambda: watch.ready() == n, timeout=max(300, n), what=f"{n} users Ready")
        loaded = rss_kib(operator.proc.pid)
        result["create"] = {
            **create.report(n),
            "kubectl_create_seconds": round(create.submitted, 2),
        }

        time.sleep(RESYNC_SECONDS + 5)  # the first resync settles what it settles
        before = watch.versions()
        with Scenario(kubeconfig, operator, cpu) as resync:
            time.sleep(RESYNC_SECONDS * 2)
        after = watch.versions()
        resync_report = resync.report(n)
        resync_report["users_written"] = sum(after.get(k) != v for k, v in before.items())
        result["resync"] = resync_report
        settled = rss_kib(operator.proc.pid)

        generation = int(
            json.loads(kubectl(kubeconfig, "get", "llmpolicy", policy, "-o", "json"))["metadata"][
                "generation"
            ]
        )
        edit = json.dumps({"spec": {"defaults": {"maxBudget": BUDGET_AFTER}}})
        with Scenario(kubeconfig, operator, cpu) as policy_edit:
            kubectl(kubeconfig, "patch", "llmpolicy", policy, "--type=merge", "-p", edit)
            watch.wait(
                lambda: watch.ready(generation + 1) == n,
                timeout=max(300, n),
                what=f"{n} users Ready for policy generation {generation + 1}",
            )
        edited = rss_kib(operator.proc.pid)
        budgets = litellm_budgets(litellm.url, key, set(names))
        stale = [u for u, b in budgets.items() if b != BUDGET_AFTER]
        if len(budgets) != n or stale:
            raise AssertionError(f"LiteLLM does not hold the new budget: {stale[:5]}")
        result["policy_edit"] = policy_edit.report(n)

        operator.stop()
        before = watch.versions()
        with (
            RssPeak(lambda: operator.proc.pid if operator.proc else None) as restart_peak,
            Scenario(kubeconfig, operator, cpu) as restart,
        ):
            operator.start()
            eventually(
                lambda: operator.counter("litellm_operator_reconciles_total") >= n,
                timeout=max(120, n / 10),
                what=f"{n} users resumed",
                every=0.1,
            )
        time.sleep(1)
        after = watch.versions()
        rested = rss_kib(operator.proc.pid)
        restart_report = restart.report(n)
        written = sorted(k for k, v in before.items() if after.get(k) != v)
        restart_report["users_written"] = len(written)
        restart_report["users_written_first"] = written[:5]
        result["restart"] = restart_report
        result["memory"] = {
            "rss_idle_mib": round(idle / 1024, 1),
            "rss_create_peak_mib": round(create_peak.kib / 1024, 1),
            "rss_after_create_mib": round(loaded / 1024, 1),
            "rss_settled_mib": round(settled / 1024, 1),
            "rss_after_policy_edit_mib": round(edited / 1024, 1),
            "rss_after_restart_mib": round(rested / 1024, 1),
            "rss_restart_peak_mib": round(restart_peak.kib / 1024, 1),
            "kib_per_user_create_peak": round((create_peak.kib - idle) / n, 1),
            "kib_per_user_after_create": round((loaded - idle) / n, 1),
            "kib_per_user_settled": round((settled - idle) / n, 1),
            "kib_per_user_after_policy_edit": round((edited - idle) / n, 1),
            "kib_per_user_at_rest": round((rested - idle) / n, 1),
            "kib_per_user_restart_peak": round((restart_peak.kib - idle) / n, 1),
        }
    finally:
        operator.stop()
        watch.stop()

    old, new = (
        policy_doc(policy, namespace, BUDGET_BEFORE),
        policy_doc(policy, namespace, BUDGET_AFTER),
    )
    old["metadata"]["generation"], new["metadata"]["generation"] = 1, 2
    floor_users = [user_doc(namespace, i, policy) for i in floors.floor_ids(n)]
    for user in floor_users:
        user["metadata"]["uid"] = str(uuid.uuid4())
    create_bodies = [floors.create_body(u, old, u["metadata"]["name"]) for u in floor_users]
    update_bodies = [floors.update_body(u, old, new, u["metadata"]["name"]) for u in floor_users]
    create_floor = floors.create_floor(litellm.url, key, CONCURRENCY, create_bodies)
    update_floor = floors.update_floor(litellm.url, key, CONCURRENCY, update_bodies)
    bulk_floor = floors.bulk_update_floor(litellm.url, key, MAX_FLIGHTS, MAX_BATCH, update_bodies)
    result["create"]["floor_seconds"] = round(create_floor, 2)
    result["create"]["ratio"] = round(result["create"]["seconds"] / create_floor, 2)
    result["policy_edit"]["floor_seconds"] = round(update_floor, 2)
    result["policy_edit"]["ratio"] = round(result["policy_edit"]["seconds"] / update_floor, 2)
    result["policy_edit"]["bulk_floor_seconds"] = round(bulk_floor, 2)
    result["policy_edit"]["bulk_ratio"] = round(result["policy_edit"]["seconds"] / bulk_floor, 2)
    result["floor_payloads"] = {"create": create_bodies[0], "update": update_bodies[0]}
    return result


SPREAD = (
    ("create", ("create", "seconds")),
    ("create_cpu_per_1000", ("create", "operator_cpu_per_1000_users")),
    ("policy_edit", ("policy_edit", "seconds")),
    ("policy_edit_cpu_per_1000", ("policy_edit", "operator_cpu_per_1000_users")),
    ("restart", ("restart", "seconds")),
    ("kib_per_user_after_create", ("memory", "kib_per_user_after_create")),
    ("kib_per_user_settled", ("memory", "kib_per_user_settled")),
)


def spread(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per operator and size measured more than once: each figure's min, median and max."""
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for r in results:
        if not r.get("carried_over"):
            groups.setdefault((r.get("operator", "this"), r["users"]), []).append(r)
    rows = []
    for (operator, n), runs in sorted(groups.items()):
        if len(runs) < 2:
            continue
        row: dict[str, Any] = {"operator": operator, "users": n, "runs": len(runs)}
        for name, (scenario, figure) in SPREAD:
            values = [float(r[scenario][figure]) for r in runs]
            row[name] = [min(values), round(statistics.median(values), 2), max(values)]
        rows.append(row)
    return rows


def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(int(mem) / 1024 / 1024, 1),
        "python": platform.python_version(),
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def kept_results(path: Path, sizes: list[int]) -> list[dict[str, Any]]:
    """The results of an earlier run for the sizes this run does not measure (``--keep``)."""
    if not path.exists():
        return []
    earlier = json.loads(path.read_text())
    return [
        {"when": earlier["machine"]["when"], **r, "carried_over": True}
        for r in earlier["results"]
        if r["users"] not in sizes
    ]


def bench_processes(litellm: Instance | None) -> Callable[[], set[int]]:
    """The roots of the processes the CPU meter counts: this one (its children: the control
    plane, LiteLLM, the operator) and the PostgreSQL server of the LiteLLM it started."""

    def roots() -> set[int]:
        found = {os.getpid()}
        state = InstanceState.load(litellm.directory / "state.json") if litellm else None
        pid = postmaster_pid(Path(state.pg_data)) if state else None
        return found | ({pid} if pid else set())

    return roots


def alternation(baseline: Path | None, round_: int) -> list[tuple[str, Path | None]]:
    """The operators of one round, in the order they run: alternating which goes first."""
    if baseline is None:
        return [("this", None)]
    pair: list[tuple[str, Path | None]] = [("this", None), ("baseline", baseline.resolve())]
    return pair if round_ % 2 == 0 else pair[::-1]


@contextlib.contextmanager
def stack() -> Iterator[tuple[Path, Path, LiteLLMEndpoint, Callable[[], set[int]]]]:
    """A work directory, a control plane with the CRDs (``KUBECONFIG``'s, else envtest's) and
    a LiteLLM (``LITELLM_URL``'s, else the project's), and the roots of the processes to meter."""
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        workdir = Path(tmp)
        plane = None
        if os.environ.get("KUBECONFIG"):
            kubeconfig = Path(os.environ["KUBECONFIG"])
        else:
            plane = ControlPlane(workdir / "controlplane", assets=find_assets())
            plane.start()
            kubeconfig = plane.kubeconfig
        endpoint = LiteLLMEndpoint.from_env()
        litellm = None
        try:
            kubectl(kubeconfig, "apply", "--server-side", "-f", str(ROOT / "deploy" / "crds"))
            kubectl(
                kubeconfig, "wait", "--for=condition=Established", "crd", "--all", "--timeout=60s"
            )
            if endpoint is None:
                litellm = Instance(workdir / "litellm")
                endpoint = litellm.start(exit_with_parent=True)
            yield workdir, kubeconfig, endpoint, bench_processes(litellm)
        finally:
            if litellm is not None:
                litellm.stop()
            if plane is not None:
                plane.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", default="100,1000", help="comma-separated sizes")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--logs", type=Path, help="keep the operator's logs in this directory")
    parser.add_argument("--rounds", type=int, default=1, help="runs of every size")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="another checkout whose operator runs alternately with this one (not judged)",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the results of other sizes already in --out (each says when it was measured)",
    )
    args = parser.parse_args()
    sizes = [int(s) for s in str(args.users).split(",") if s.strip()]
    args.out.mkdir(parents=True, exist_ok=True)
    results = kept_results(args.out / "bench.json", sizes) if args.keep else []
    with stack() as (workdir, kubeconfig, endpoint, roots):
        for n in sizes:
            for round_ in range(args.rounds):
                for operator, source in alternation(args.baseline, round_):
                    result = run_size(kubeconfig, endpoint, n, workdir, roots, source)
                    results.append({**result, "operator": operator, "round": round_ + 1})
                    print(json.dumps(results[-1]), file=sys.stderr)
        if args.logs:
            args.logs.mkdir(parents=True, exist_ok=True)
            for log in workdir.glob("operator-*.log"):
                shutil.copy(log, args.logs)
    # Judged: this operator's results of this run (those kept from an earlier run were then).
    judged = [r for r in results if r.get("operator", "this") == "this" and r["users"] in sizes]
    document = {
        "machine": machine(),
        "goals": [{"name": g.name, "text": g.text, "limit": g.limit} for g in GOALS],
        "results": results,
        "spread": spread(results),
        "missed": [m for r in judged for m in missed(r)],
    }
    (args.out / "bench.json").write_text(json.dumps(document, indent=2) + "\n")
    from bench.chart import draw  # matplotlib only when there is something to draw

    draw(document, args.out / "bench.png")
    print(json.dumps(document, indent=2))
    return 1 if document["missed"] else 0


if __name__ == "__main__":
    sys.exit(main())
