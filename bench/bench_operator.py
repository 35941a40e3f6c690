"""Benchmark: the operator against a floor measured in the same run, on the same LiteLLM.

Three numbers, each beside its floor:

1. **Provisioning** N users: time from applying N LiteLLMUsers to all of them Ready, against a
   bare client issuing the calls any provisioning needs (``/user/info`` → 404, ``/user/new``)
   for N other ids with the same concurrency.
2. **Steady-state resync**: LiteLLM calls per resync interval for N in-sync users, against the
   naive floor of one ``/user/info`` per user; Kubernetes writes in that interval (goal: 0).
3. **Memory**: the operator's resident set size with N users, against an idle operator.

    python bench/bench_operator.py --users 200       # needs KUBECONFIG or the envtest binaries;
                                                     # LITELLM_URL, else the project's LiteLLM
It prints one JSON document and exits 1 when a goal is missed (see GOALS). The operator makes
three LiteLLM calls per new user (the floor two: it re-reads the user for budgetResetAt, which
``/user/new`` does not return) plus its Kubernetes writes (userId pinned before the create, the
status, kopf's annotations), hence a provisioning goal of 5x the floor. The resync cost depends
on how many users LiteLLM holds in all (``/user/list`` pages of 100), not only the operator's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import yaml  # noqa: E402

from devenv.controlplane import ControlPlane, find_assets  # noqa: E402
from devenv.litellm import Instance, LiteLLMEndpoint  # noqa: E402
from litellm_operator.models import API_VERSION  # noqa: E402
from tests.e2e.operator_harness import OperatorProcess, eventually, free_port  # noqa: E402

GOALS = {
    "provisioning_ratio_max": 5.0,
    "resync_calls_ratio_max": 0.05,
    "resync_k8s_writes_max": 0,
}
RESYNC_SECONDS = 5


async def floor_provisioning(url: str, key: str, n: int, concurrency: int) -> float:
    """The bare minimum: look up, then create, N users; same concurrency as the operator."""
    ids = [f"floor-{uuid.uuid4().hex[:10]}" for _ in range(n)]
    limit = asyncio.Semaphore(concurrency)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as http:

        async def one(user_id: str) -> None:
            async with limit:
                await http.get("/user/info", params={"user_id": user_id})
                body = {"user_id": user_id, "max_budget": 10, "auto_create_key": False}
                (await http.post("/user/new", json=body)).raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in ids))
        return time.perf_counter() - started


def kubectl(kubeconfig: Path, *args: str, stdin: str | None = None) -> str:
    return subprocess.run(
        ["kubectl", f"--kubeconfig={kubeconfig}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def resource_versions(kubeconfig: Path, namespace: str) -> list[str]:
    """Every LiteLLMUser's resourceVersion, in list order (a change means a Kubernetes write)."""
    jsonpath = "jsonpath={.items[*].metadata.resourceVersion}"
    return kubectl(kubeconfig, "get", "llmusers", "-n", namespace, "-o", jsonpath).split()


def ready_count(kubeconfig: Path, namespace: str) -> int:
    out = kubectl(kubeconfig, "get", "llmusers", "-n", namespace, "-o", "json")
    items = json.loads(out)["items"]
    return sum(
        any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in (i.get("status") or {}).get("conditions") or []
        )
        for i in items
    )


def run(kubeconfig: Path, litellm: LiteLLMEndpoint, n: int, workdir: Path) -> dict[str, Any]:
    key = litellm.master_key.get_secret_value()
    kubectl(kubeconfig, "apply", "--server-side", "-f", str(ROOT / "deploy" / "crds"))
    kubectl(kubeconfig, "wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
    namespace = f"bench-{uuid.uuid4().hex[:6]}"
    policy = f"bench-{uuid.uuid4().hex[:6]}"
    kubectl(kubeconfig, "create", "namespace", namespace)
    concurrency = 8
    env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "LITELLM_URL": litellm.url,
        "LITELLM_MASTER_KEY": key,
        "LITELLM_OPERATOR_RESYNC_SECONDS": str(RESYNC_SECONDS),
        "LITELLM_OPERATOR_METRICS_PORT": str(free_port()),
        "LITELLM_OPERATOR_CONCURRENCY": str(concurrency),
    }
    operator = OperatorProcess(env, workdir / "operator.log")
    operator.start()
    try:
        assert operator.proc is not None
        time.sleep(2)
        idle_rss = rss_kib(operator.proc.pid)
        policy_doc = {
            "apiVersion": API_VERSION,
            "kind": "ProvisioningPolicy",
            "metadata": {"name": policy},
            "spec": {
                "allowedNamespaces": [namespace],
                "defaults": {"maxBudget": 10, "models": ["gpt-4o-mini"]},
            },
        }
        users = [
            {
                "apiVersion": API_VERSION,
                "kind": "LiteLLMUser",
                "metadata": {"name": f"u{i:05d}-{uuid.uuid4().hex[:4]}", "namespace": namespace},
                "spec": {"policyRef": policy},
            }
            for i in range(n)
        ]
        manifest = yaml.safe_dump_all([policy_doc, *users])
        started = time.perf_counter()
        kubectl(kubeconfig, "apply", "-f", "-", stdin=manifest)
        eventually(
            lambda: ready_count(kubeconfig, namespace) == n,
            timeout=max(120, n),
            what=f"{n} users Ready",
            every=0.5,
        )
        provisioning = time.perf_counter() - started
        loaded_rss = rss_kib(operator.proc.pid)

        time.sleep(RESYNC_SECONDS * 2)  # let the first resyncs settle the status (spend, reset)
        versions = resource_versions(kubeconfig, namespace)
        calls_before = operator.counter("litellm_operator_litellm_requests_total")
        window = RESYNC_SECONDS * 3
        time.sleep(window)
        calls = operator.counter("litellm_operator_litellm_requests_total") - calls_before
        after = resource_versions(kubeconfig, namespace)
        writes = sum(a != b for a, b in zip(versions, after, strict=True))
    finally:
        operator.stop()

    floor = asyncio.run(floor_provisioning(litellm.url, key, n, concurrency))
    resyncs = window / RESYNC_SECONDS
    naive_calls = n * resyncs
    return {
        "users": n,
        "provisioning_seconds": round(provisioning, 2),
        "provisioning_floor_seconds": round(floor, 2),
        "provisioning_ratio": round(provisioning / floor, 2),
        "resync_window_seconds": window,
        "resync_litellm_calls": calls,
        "resync_naive_floor_calls": naive_calls,
        "resync_calls_ratio": round(calls / naive_calls, 4),
        "resync_k8s_writes": writes,
        "rss_idle_mib": round(idle_rss / 1024, 1),
        "rss_loaded_mib": round(loaded_rss / 1024, 1),
        "rss_per_user_kib": round((loaded_rss - idle_rss) / n, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=200)
    args = parser.parse_args()
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
            if endpoint is None:  # the project's own LiteLLM (it copes with this 0700 temp dir)
                litellm = Instance(workdir / "litellm")
                endpoint = litellm.start(exit_with_parent=True)
            result = run(kubeconfig, endpoint, args.users, workdir)
        finally:
            if litellm is not None:
                litellm.stop()
            if plane is not None:
                plane.stop()
    missed = [
        name
        for name, ok in {
            "provisioning_ratio": result["provisioning_ratio"] <= GOALS["provisioning_ratio_max"],
            "resync_calls_ratio": result["resync_calls_ratio"] <= GOALS["resync_calls_ratio_max"],
            "resync_k8s_writes": result["resync_k8s_writes"] <= GOALS["resync_k8s_writes_max"],
        }.items()
        if not ok
    ]
    print(json.dumps({**result, "goals": GOALS, "missed": missed}, indent=2))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
