"""Soak: hours of a real cluster's life compressed into one run (``make soak``, SOAK_MINUTES).

A fresh control plane whose watches end after about a minute (``--min-request-timeout``, for
every client that does not ask for its own timeout; the operator asks for 300 s) and whose
etcd is compacted every minute, so resumed watches meet 410 Gone and relist; a LiteLLM behind
a switchable relay and the fault proxy; two operators with leader election on, watching the
``soak-*`` namespaces. 1,000 LiteLLMUsers (a tenth with a key) under two policies (the second
adds a team membership), and a few LiteLLM users the operator must never touch. Then, minute
by minute, in cycles of five:

Before the schedule, once the users are Ready, each policy is edited once (the warm-up), so
that the first quiet phase compares an operator that has done each kind of work once. Then:

* minute 0: a policy edit (the budget of one policy, alternately), a namespace created with
  users, the one created a cycle earlier emptied and deleted (its watcher stops for good);
* minutes 0-3: churn: 2% of the users created, 2% deleted, 5% edited (their alias);
* minute 4: quiet (nothing changes), prolonged until the operator is idle (every user Ready,
  no reconcile for :data:`IDLE_SECONDS`; at most :data:`QUIET_LIMIT_SECONDS`): its end is where
  memory, tasks, threads and descriptors are compared, so that work still queued from the churn
  is not taken for growth. The schedule after it moves by the time the quiet phase overran.

Faults on a schedule, spread over the churn minutes after the first cycle: LiteLLM paused
(connections held unanswered) for a minute, kube-apiserver restarted (same store and port),
the leader SIGKILLed (its standby takes over; the killed one comes back as the standby), and
lost LiteLLM answers (the fault proxy forwards writes and drops the answers). An operator that
exits on its own (a leader that lost its Lease exits, status 3) is restarted and counted.

At the end, the churn stops and the operator settles; then it checks (see :func:`verdicts`):
every resource Ready; LiteLLM holds exactly the users, memberships and keys the resources
declare (no orphan, no duplicate, the foreign users untouched); the leader's indices hold
exactly the live objects; two resync intervals pass with no write of either kind. Sampled every
few seconds meanwhile: resident memory, asyncio tasks, threads, descriptors, index sizes, watch
requests and listings, reconcile latency (p50/p99 per kind of minute), LiteLLM calls per minute.
Writes ``soak.json`` and ``soak.png`` to ``--out`` and exits 1 when a check or goal fails.

    python bench/soak.py [--minutes 30] [--users 1000] [--out bench/results]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "operator"))

from kubernetes import client as k8s  # noqa: E402
from kubernetes import config as k8s_config  # noqa: E402
from kubernetes.client.exceptions import ApiException  # noqa: E402

from bench import soak_sample as ss  # noqa: E402
from bench.measure import apiserver_requests, difference, rss_kib, writes  # noqa: E402
from devenv.controlplane import ControlPlane, find_assets  # noqa: E402
from devenv.litellm import Instance, LiteLLMEndpoint  # noqa: E402
from litellm_operator.fields import MANAGED_BY  # noqa: E402
from litellm_operator.litellm import LiteLLMClient  # noqa: E402
from litellm_operator.litellm.models import NewUserRequest  # noqa: E402
from litellm_operator.models import API_VERSION, GROUP, USER_PLURAL, VERSION  # noqa: E402
from litellm_operator.users.plan import OWNER_UID  # noqa: E402
from tests.e2e.faults import FaultProxy, Rule  # noqa: E402
from tests.e2e.operator_harness import Forwarder, OperatorProcess, free_port  # noqa: E402

APISERVER_FLAGS = ("--min-request-timeout=60", "--etcd-compaction-interval=1m")
RESYNC_SECONDS = 60
CONCURRENCY = 8
SAMPLE_SECONDS = 5.0
APISERVER_SAMPLE_EVERY = 3
"""The API server's request counters are read every third sample (a kubectl per read)."""
CYCLE_MINUTES = 5
QUIET_MINUTE = 4
CREATE, DELETE, EDIT = 0.02, 0.02, 0.05
NAMESPACES = 10
TRANSIENT_USERS = 20
KEYED_EVERY = 10
DOMAIN = "soak.example.com"
TEAM = "soak-team"
POLICIES = ("soak-a", "soak-b")
FOREIGN_USERS = 5
SETTLE_SECONDS = 600
IDLE_SECONDS = 20.0
QUIET_LIMIT_SECONDS = 180.0
QUIET_END_SAMPLES = 5
WARM_UP_BUDGET = 10.5
WARM_UP_LIMIT_SECONDS = 600.0
LOST = "lost-answers"
FAULTS = ("litellm-paused", "apiserver-restart", "leader-killed", LOST)
LITELLM_PAUSE_SECONDS = 60
APISERVER_DOWN_SECONDS = 10
LOST_ANSWERS = 5


def log(message: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- the resources --------------------------------------------------------------------------


def policy_body(name: str, budget: float) -> dict[str, Any]:
    defaults: dict[str, Any] = {"maxBudget": budget, "models": ["gpt-4o-mini"]}
    if name == POLICIES[1]:
        defaults["teams"] = [TEAM]
    return {
        "apiVersion": API_VERSION,
        "kind": "ProvisioningPolicy",
        "metadata": {"name": name},
        "spec": {
            "userIdDomain": DOMAIN,
            "allowedNamespaces": ["soak-*"],
            "identities": [{"namespaces": ["soak-*"], "emails": [f"*@{DOMAIN}"]}],
            "defaults": defaults,
        },
    }


@dataclass
class Declared:
    """What the soak declared for one LiteLLMUser (the truth the end checks compare with)."""

    namespace: str
    name: str
    policy: str
    keyed: bool
    alias: str = "v0"

    @property
    def user_id(self) -> str:
        return f"{self.name}@{DOMAIN}"

    def body(self) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "policyRef": self.policy,
            "email": self.user_id,
            "alias": self.alias,
        }
        if self.keyed:
            spec["keys"] = [{"name": "main"}]
        return {
            "apiVersion": API_VERSION,
            "kind": "LiteLLMUser",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": spec,
        }


@dataclass
class World:
    """The soak's resources through the API server, and what it declared."""

    kubeconfig: Path
    declared: dict[tuple[str, str], Declared] = field(default_factory=dict)
    budgets: dict[str, float] = field(default_factory=dict)
    serial: int = 0
    transient: list[str] = field(default_factory=list)
    namespaces_deleted: int = 0
    failures: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        loader: Any = k8s_config  # the kubernetes client is untyped: its APIs are used as Any
        api = loader.new_client_from_config(str(self.kubeconfig))
        self.custom: Any = k8s.CustomObjectsApi(api)
        self.core: Any = k8s.CoreV1Api(api)

    # -- writes that tolerate an API server restart
    def attempt(self, what: str, call: Callable[[], object], tries: int = 30) -> bool:
        for _ in range(tries):
            try:
                call()
                return True
            except ApiException as exc:
                if exc.status in (404, 409):
                    return exc.status == 409 and what.startswith("create")
                if exc.status not in (429, 500, 503, 504):
                    self.failures.append(f"{what}: {exc.status} {exc.reason}")
                    return False
            except OSError:
                pass
            time.sleep(1)
        self.failures.append(f"{what}: API server unreachable")
        return False

    def create_namespace(self, name: str) -> None:
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        self.attempt(f"create namespace {name}", lambda: self.core.create_namespace(body))

    def set_policy(self, name: str, budget: float) -> None:
        body = policy_body(name, budget)
        self.budgets[name] = budget

        def apply() -> None:
            try:
                current = self.custom.get_cluster_custom_object(
                    GROUP, VERSION, "provisioningpolicies", name
                )
            except ApiException as exc:
                if exc.status != 404:
                    raise
                self.custom.create_cluster_custom_object(
                    GROUP, VERSION, "provisioningpolicies", body
                )
                return
            body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            self.custom.replace_cluster_custom_object(
                GROUP, VERSION, "provisioningpolicies", name, body
            )

        self.attempt(f"update policy {name}", apply)

    def new_user(self, namespace: str) -> Declared:
        self.serial += 1
        user = Declared(
            namespace,
            f"u{self.serial:05d}",
            POLICIES[self.serial % 2],
            keyed=self.serial % KEYED_EVERY == 0,
        )
        if self.attempt(
            f"create user {user.name}",
            lambda: self.custom.create_namespaced_custom_object(
                GROUP, VERSION, namespace, USER_PLURAL, user.body()
            ),
        ):
            self.declared[(namespace, user.name)] = user
        return user

    def delete_user(self, user: Declared) -> None:
        self.declared.pop((user.namespace, user.name), None)
        self.attempt(
            f"delete user {user.name}",
            lambda: self.custom.delete_namespaced_custom_object(
                GROUP, VERSION, user.namespace, USER_PLURAL, user.name
            ),
        )

    def edit_user(self, user: Declared, alias: str) -> None:
        def patch() -> None:
            self.custom.patch_namespaced_custom_object(
                GROUP, VERSION, user.namespace, USER_PLURAL, user.name, {"spec": {"alias": alias}}
            )

        if self.attempt(f"edit user {user.name}", patch):
            user.alias = alias

    def live_users(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            page = self.custom.list_cluster_custom_object(
                GROUP, VERSION, USER_PLURAL, limit=500, _continue=token
            )
            items += page["items"]
            token = page["metadata"].get("continue")
            if not token:
                return [u for u in items if u["metadata"]["namespace"].startswith("soak-")]

    # -- namespaces that come and go
    def add_transient(self, cycle: int) -> None:
        name = f"soak-tmp-{cycle}"
        self.create_namespace(name)
        self.transient.append(name)
        for _ in range(TRANSIENT_USERS):
            self.new_user(name)

    def drop_transient(self) -> None:
        """Delete the oldest transient namespace: its users first (the operator's finalizers
        clean LiteLLM up), then the namespace, finalized by hand (no namespace controller runs
        here), so kopf sees it gone and stops its watcher."""
        if len(self.transient) < 2:
            return
        name = self.transient.pop(0)
        for user in [u for u in self.declared.values() if u.namespace == name]:
            self.delete_user(user)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            with contextlib.suppress(ApiException, OSError):
                if not self.custom.list_namespaced_custom_object(GROUP, VERSION, name, USER_PLURAL)[
                    "items"
                ]:
                    break
            time.sleep(2)
        else:
            self.failures.append(f"namespace {name}: its users were not deleted in 180 s")
            return
        self.attempt(f"delete namespace {name}", lambda: self.core.delete_namespace(name))

        def finalize() -> None:
            body = self.core.read_namespace(name)
            body.spec.finalizers = []
            self.core.replace_namespace_finalize(name, body)

        if self.attempt(f"finalize namespace {name}", finalize):
            self.namespaces_deleted += 1

    # -- churn
    def churn(self, rng: random.Random, minute: int) -> dict[str, int]:
        users = [u for u in self.declared.values() if not u.namespace.startswith("soak-tmp-")]
        size = len(users)
        counts = {
            "created": round(size * CREATE),
            "deleted": round(size * DELETE),
            "edited": round(size * EDIT),
        }
        for user in rng.sample(users, counts["deleted"]):
            self.delete_user(user)
        alive = [u for u in users if (u.namespace, u.name) in self.declared]
        for user in rng.sample(alive, min(counts["edited"], len(alive))):
            self.edit_user(user, f"m{minute}")
        for _ in range(counts["created"]):
            self.new_user(f"soak-{rng.randrange(NAMESPACES):02d}")
        return counts


# --- the operators -------------------------------------------------------------------------


class Operators:
    """Two operators under leader election; one that exits unasked is started again."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self.processes = [
            OperatorProcess(
                {**env, "LITELLM_OPERATOR_METRICS_PORT": str(free_port())},
                workdir / f"operator-{i}.log",
            )
            for i in range(2)
        ]
        self.restarts: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def start(self) -> None:
        for process in self.processes:
            process.start()

    def leader(self) -> OperatorProcess | None:
        for process in self.processes:
            running = process.proc is not None and process.proc.poll() is None
            if running and process.gauge(ss.GAUGES["leader"]) == 1:
                return process
        return None

    def wait_leader(self, timeout: float = 120) -> OperatorProcess:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            leader = self.leader()
            if leader is not None:
                return leader
            time.sleep(0.5)
        raise AssertionError("no operator leads")

    def revive(self) -> None:
        """Start again any operator that exited (a lost Lease, a crash): counted."""
        with self.lock:
            for index, process in enumerate(self.processes):
                if process.proc is not None and process.proc.poll() is not None:
                    code = process.proc.returncode
                    self.restarts.append({"operator": index, "exit": code, "at": time.time()})
                    log(f"operator {index} exited ({code}): started again")
                    with contextlib.suppress(AssertionError):
                        process.start()

    def kill_leader(self) -> float:
        """SIGKILL the leader; return the seconds until the standby leads."""
        with self.lock:
            leader = self.wait_leader()
            killed = time.monotonic()
            leader.kill()
            standby = next(p for p in self.processes if p is not leader)
            deadline = killed + 120
            while time.monotonic() < deadline and standby.gauge(ss.GAUGES["leader"]) != 1:
                time.sleep(0.2)
            taken = time.monotonic() - killed
            leader.start()  # back, as the standby
            return taken

    def stop(self) -> None:
        for process in self.processes:
            process.stop()


# --- sampling ------------------------------------------------------------------------------


class Sampler:
    """Every few seconds: each operator's RSS, the leader's vitals and counters, the API
    server's watch and list requests for LiteLLMUsers. Also revives exited operators."""

    def __init__(self, operators: Operators, kubeconfig: Path, started: float) -> None:
        self.operators = operators
        self.kubeconfig = kubeconfig
        self.started = started
        self.samples: list[dict[str, Any]] = []
        self.last: ss.Samples = {}
        self.phase = "setup"
        self.minute = -1
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._apiserver: dict[str, float] = {}
        self._apiserver_seen: dict[str, float] = {}

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        count = 0
        while not self._stop.wait(SAMPLE_SECONDS):
            self.operators.revive()
            with contextlib.suppress(Exception):  # a sample missed is not a failure
                self.samples.append(self.sample(count % APISERVER_SAMPLE_EVERY == 0))
            count += 1

    def leader_metrics(self) -> tuple[OperatorProcess | None, ss.Samples]:
        for process in self.operators.processes:
            if process.proc is None or process.proc.poll() is not None:
                continue
            parsed = ss.parse(process.metrics())
            if ss.value(parsed, ss.GAUGES["leader"]) == 1:
                return process, parsed
        return None, {}

    def sample(self, with_apiserver: bool) -> dict[str, Any]:
        leader, parsed = self.leader_metrics()
        if parsed:
            self.last = parsed
        if with_apiserver:
            with contextlib.suppress(Exception):
                counts = apiserver_requests(self.kubeconfig, GROUP)
                now = {
                    "watches": float(counts.get(f"WATCH {USER_PLURAL}", 0)),
                    "lists": float(counts.get(f"LIST {USER_PLURAL}", 0)),
                }
                # The API server's counters restart with it: kept cumulative over the run.
                for name, increase in ss.since(now, self._apiserver_seen).items():
                    self._apiserver[name] = self._apiserver.get(name, 0.0) + increase
                self._apiserver_seen = now
        rss = {}
        for index, process in enumerate(self.operators.processes):
            if process.proc is not None and process.proc.poll() is None:
                with contextlib.suppress(OSError):
                    rss[str(index)] = rss_kib(process.proc.pid)
        leader_index = self.operators.processes.index(leader) if leader else None
        calls = ss.litellm_calls(parsed)
        return {
            "t": round(time.time() - self.started, 1),
            "minute": self.minute,
            "phase": self.phase,
            "leader": leader_index,
            "leader_pid": leader.proc.pid if leader and leader.proc else None,
            "rss_kib": rss,
            "leader_rss_kib": rss.get(str(leader_index)) if leader_index is not None else None,
            **{k: ss.value(parsed, name) for k, name in ss.GAUGES.items() if k != "leader"},
            "index_objects": ss.value(parsed, ss.P + "index_objects", resource=USER_PLURAL),
            "listings": ss.value(parsed, ss.P + "listings_total", resource=USER_PLURAL),
            "streams_stopped": ss.value(
                parsed, ss.P + "streams_stopped_total", resource=USER_PLURAL
            ),
            "litellm_calls": sum(calls.values()),
            "reconciles": ss.value(parsed, ss.P + "reconcile_duration_seconds_count"),
            **self._apiserver,
        }


@dataclass
class Phase:
    """One minute of the schedule, with the leader's counters at its start."""

    minute: int
    kind: str
    buckets: dict[float, float]
    calls: dict[str, float]
    started: float
    details: dict[str, Any] = field(default_factory=dict)

    def close(self, sampler: Sampler) -> dict[str, Any]:
        latest = sampler.last
        return {
            "minute": self.minute,
            "kind": self.kind,
            "seconds": round(time.monotonic() - self.started, 1),
            "reconcile_buckets": ss.since(ss.buckets(latest), self.buckets),
            "litellm_calls": nonzero(ss.since(ss.litellm_calls(latest), self.calls)),
            **self.details,
        }


def nonzero(counts: dict[Any, float]) -> dict[Any, float]:
    return {k: v for k, v in counts.items() if v}


# --- LiteLLM: the truth at the end --------------------------------------------------------


async def litellm_state(url: str, key: str, declared: list[Declared]) -> dict[str, Any]:
    """Every user LiteLLM holds, the team's members, and the keys of the declared users."""
    async with LiteLLMClient(url, key, timeout=60) as litellm:
        users = {u.user_id: u async for u in litellm.list_users()}
        team = await litellm.get_team(TEAM)
        keys: dict[str, list[str]] = {}
        for user in declared:
            if user.keyed and user.user_id in users:
                records = await litellm.list_user_keys(user.user_id)
                keys[user.user_id] = sorted(r.key_alias or "" for r in records)
    return {"users": users, "team_members": team.member_ids if team else set(), "keys": keys}


async def create_foreign(url: str, key: str) -> None:
    async with LiteLLMClient(url, key, timeout=60) as litellm:
        with contextlib.suppress(Exception):
            await litellm.new_team(TEAM)
        for i in range(FOREIGN_USERS):
            with contextlib.suppress(Exception):
                fields = {"user_id": f"foreign-{i}", "max_budget": 1.0 + i, "user_alias": "x"}
                await litellm.create_user(NewUserRequest.model_validate(fields))


def foreign_view(users: dict[str, Any]) -> dict[str, Any]:
    return {
        uid: (u.max_budget, u.user_alias, u.metadata.get(MANAGED_BY))
        for uid, u in users.items()
        if uid.startswith("foreign-")
    }


def litellm_mismatches(world: World, state: dict[str, Any]) -> list[str]:
    """How LiteLLM differs from what the resources declare (empty: exactly as declared)."""
    found: list[str] = []
    declared = {u.user_id: u for u in world.declared.values()}
    managed = {uid for uid, u in state["users"].items() if u.metadata.get(MANAGED_BY)}
    found += [f"orphan LiteLLM user {uid}" for uid in sorted(managed - set(declared))]
    found += [f"missing LiteLLM user {uid}" for uid in sorted(set(declared) - managed)]
    for uid in sorted(managed & set(declared)):
        want, have = declared[uid], state["users"][uid]
        budget = world.budgets[want.policy]
        if have.max_budget != budget:
            found.append(f"{uid}: max_budget {have.max_budget}, declared {budget}")
        if have.user_alias != want.alias:
            found.append(f"{uid}: alias {have.user_alias!r}, declared {want.alias!r}")
        member = uid in state["team_members"]
        if member != (want.policy == POLICIES[1]):
            found.append(f"{uid}: team member {member}, policy {want.policy}")
        if want.keyed and state["keys"].get(uid) != [f"{want.namespace}/{want.name}/main"]:
            found.append(f"{uid}: keys {state['keys'].get(uid)}")
    stale = {m for m in state["team_members"] if m in managed and m not in declared}
    found += [f"stale team member {m}" for m in sorted(stale)]
    owners = [u.metadata.get(OWNER_UID) for uid, u in state["users"].items() if uid in managed]
    if len(owners) != len(set(owners)):
        found.append("two LiteLLM users with the same owner")
    return found


def not_ready(world: World, live: list[dict[str, Any]]) -> list[str]:
    found = []
    names = {(u["metadata"]["namespace"], u["metadata"]["name"]) for u in live}
    for user in live:
        meta, status = user["metadata"], user.get("status") or {}
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in status.get("conditions") or []
        )
        if not ready or status.get("observedGeneration") != meta.get("generation"):
            found.append(f"{meta['namespace']}/{meta['name']}")
    found += [f"{k[0]}/{k[1]} (declared, not live)" for k in world.declared if k not in names]
    found += [f"{k[0]}/{k[1]} (live, not declared)" for k in names if k not in world.declared]
    return found


# --- the run -------------------------------------------------------------------------------


def schedule(minutes: int) -> dict[int, list[str]]:
    """Which churn minute gets which faults: spread over the churn minutes after the first
    cycle (in a run of one cycle, over its churn minutes), in the order of :data:`FAULTS`."""
    first = CYCLE_MINUTES if minutes >= 2 * CYCLE_MINUTES else 0
    churn = [m for m in range(first, minutes) if m % CYCLE_MINUTES not in (0, QUIET_MINUTE)]
    planned: dict[int, list[str]] = {}
    if churn:
        step = len(churn) / len(FAULTS)
        for i, name in enumerate(FAULTS):
            planned.setdefault(churn[int(step * i + step / 2)], []).append(name)
    return planned


@contextlib.contextmanager
def environment(workdir: Path) -> Iterator[tuple[ControlPlane, LiteLLMEndpoint]]:
    plane = ControlPlane(
        workdir / "controlplane",
        assets=find_assets(),
        apiserver_flags=APISERVER_FLAGS,
        exit_with_parent=True,
    )
    plane.start()
    instance = None
    try:
        endpoint = LiteLLMEndpoint.from_env()
        if endpoint is None:
            instance = Instance(workdir / "litellm")
            endpoint = instance.start(exit_with_parent=True)
        yield plane, endpoint
    finally:
        if instance is not None:
            instance.stop()
        plane.stop()


def kubectl(kubeconfig: Path, *args: str) -> None:
    subprocess.run(
        ["kubectl", f"--kubeconfig={kubeconfig}", *args], check=True, capture_output=True
    )


def fault(name: str, ctx: dict[str, Any]) -> dict[str, Any]:
    """Inject one fault; what happened, for the record."""
    log(f"fault: {name}")
    if name == "litellm-paused":
        ctx["relay"].pause()
        time.sleep(LITELLM_PAUSE_SECONDS)
        ctx["relay"].restore()
        return {"paused_seconds": LITELLM_PAUSE_SECONDS}
    if name == "apiserver-restart":
        started = time.monotonic()
        ctx["plane"].restart_apiserver(down_for=APISERVER_DOWN_SECONDS)
        return {"apiserver_back_after_seconds": round(time.monotonic() - started, 1)}
    if name == "leader-killed":
        return {"standby_took_over_seconds": round(ctx["operators"].kill_leader(), 1)}
    raise ValueError(name)


def lost_answers() -> Rule:
    """Armed before the minute's churn, so that its writes meet it."""
    log(f"fault: {LOST}")
    return Rule("drop", path="/user/(new|update|bulk_update|delete)", times=LOST_ANSWERS)


def wait_lost(rule: Rule) -> dict[str, Any]:
    deadline = time.monotonic() + 50
    while rule.hits < LOST_ANSWERS and time.monotonic() < deadline:
        time.sleep(1)
    return {"answers_lost": rule.hits}


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    rng = random.Random(29)
    with environment(workdir) as (plane, endpoint):
        kubeconfig = plane.kubeconfig
        kubectl(kubeconfig, "apply", "--server-side", "-f", str(ROOT / "deploy" / "crds"))
        kubectl(kubeconfig, "wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
        key = endpoint.master_key.get_secret_value()
        asyncio.run(create_foreign(endpoint.url, key))
        target = urllib.parse.urlsplit(endpoint.url)
        relay = Forwarder(target.hostname or "127.0.0.1", target.port or 80)
        relay.restore()
        proxy = FaultProxy(relay.url)
        proxy.start()
        world = World(kubeconfig)
        env = {
            **os.environ,
            "KUBECONFIG": str(kubeconfig),
            "LITELLM_URL": proxy.url,
            "LITELLM_MASTER_KEY": key,
            "LITELLM_OPERATOR_NAMESPACES": "soak-*",
            "LITELLM_OPERATOR_RESYNC_SECONDS": str(RESYNC_SECONDS),
            "LITELLM_OPERATOR_CONCURRENCY": str(CONCURRENCY),
            "LITELLM_OPERATOR_LEADER_ELECTION": "true",
        }
        operators = Operators(env, workdir)
        started = time.time()
        sampler = Sampler(operators, kubeconfig, started)
        ctx = {"relay": relay, "plane": plane, "operators": operators, "proxy": proxy}
        try:
            return soak(args, world, operators, sampler, ctx, rng, endpoint, started)
        finally:
            sampler.stop()
            operators.stop()
            proxy.stop()
            relay.cut()


def soak(
    args: argparse.Namespace,
    world: World,
    operators: Operators,
    sampler: Sampler,
    ctx: dict[str, Any],
    rng: random.Random,
    endpoint: LiteLLMEndpoint,
    started: float,
) -> dict[str, Any]:
    key = endpoint.master_key.get_secret_value()
    before_foreign = foreign_view(asyncio.run(litellm_state(endpoint.url, key, []))["users"])
    for i in range(NAMESPACES):
        world.create_namespace(f"soak-{i:02d}")
    for name in POLICIES:
        world.set_policy(name, 10.0)
    operators.start()
    operators.wait_leader()
    sampler.start()
    log(f"creating {args.users} users")
    for i in range(args.users):
        world.new_user(f"soak-{i % NAMESPACES:02d}")
    world.add_transient(0)
    settled = settle(world, sampler, timeout=max(SETTLE_SECONDS, args.users))
    log(f"{len(world.declared)} users Ready after {settled:.0f} s")
    warmed = warm_up(world, sampler)
    log(f"warmed up: idle after {warmed} s; churn for {args.minutes} min")
    faults = schedule(args.minutes)
    phases: list[dict[str, Any]] = []
    quiet_ends: list[dict[str, Any]] = []
    begin = time.monotonic()
    for minute in range(args.minutes):
        tick = begin + 60 * minute
        time.sleep(max(0.0, tick - time.monotonic()))
        cycle, step = divmod(minute, CYCLE_MINUTES)
        kind = "quiet" if step == QUIET_MINUTE else "policy-edit" if step == 0 else "churn"
        kind = "fault:" + "+".join(faults[minute]) if minute in faults else kind
        sampler.phase, sampler.minute = kind, minute
        phase = Phase(
            minute, kind, ss.buckets(sampler.last), ss.litellm_calls(sampler.last), time.monotonic()
        )
        if step == 0:
            policy = POLICIES[cycle % 2]
            world.set_policy(policy, 10.0 + minute)
            world.add_transient(cycle + 1)
            world.drop_transient()
        planned = faults.get(minute, [])
        lost = ctx["proxy"].add(lost_answers()) if LOST in planned else None
        if step != QUIET_MINUTE:
            phase.details["churn"] = world.churn(rng, minute)
        for name in planned:
            phase.details[name] = wait_lost(lost) if lost and name == LOST else fault(name, ctx)
        time.sleep(max(0.0, tick + 59 - time.monotonic()))
        if step == QUIET_MINUTE:
            idle = wait_idle(world, sampler, QUIET_LIMIT_SECONDS)
            quiet_ends.append(quiet_end(sampler, idle))
            begin += max(0.0, time.monotonic() - (tick + 59))  # the rest of the schedule moves
        phases.append(phase.close(sampler))
        log(f"minute {minute} ({kind}): {len(world.declared)} users")
    sampler.phase, sampler.minute = "settle", args.minutes
    settled = settle(world, sampler, timeout=SETTLE_SECONDS)
    log(f"settled in {settled:.0f} s; checking")
    result = verdicts(world, operators, sampler, endpoint, before_foreign)
    result.update(
        {
            "minutes": args.minutes,
            "users_declared": len(world.declared),
            "settle_seconds": round(settled, 1),
            "phases": phases,
            "quiet_ends": quiet_ends,
            "flatness": ss.flatness(quiet_ends),
            "latency": ss.phase_latency(phases),
            "operator_restarts": operators.restarts,
            "namespaces_deleted": world.namespaces_deleted,
            "world_failures": world.failures,
            "samples": sampler.samples,
        }
    )
    return result


def warm_up(world: World, sampler: Sampler) -> float | None:
    """Each policy edited once, then wait until the operator is idle: the first quiet phase,
    every later one's reference, is then an operator that has done each kind of the schedule's
    work once, not one whose allocator is still reaching its working size (README, "Long
    runs"). Seconds until idle (``None``: not within :data:`WARM_UP_LIMIT_SECONDS`)."""
    sampler.phase = "warm-up"
    for name in POLICIES:
        world.set_policy(name, WARM_UP_BUDGET)
    time.sleep(SAMPLE_SECONDS)  # the rollouts start
    return wait_idle(world, sampler, WARM_UP_LIMIT_SECONDS)


def wait_idle(world: World, sampler: Sampler, limit: float) -> float | None:
    """Seconds until every declared user is Ready and the leader has finished no reconcile for
    :data:`IDLE_SECONDS` (``None``: not within ``limit``)."""
    started = time.monotonic()
    seen: tuple[int | None, float | None] | None = None
    unchanged_since = started
    while time.monotonic() - started < limit:
        leader, parsed = sampler.leader_metrics()
        pid = leader.proc.pid if leader and leader.proc else None
        state = (pid, ss.value(parsed, ss.P + "reconcile_duration_seconds_count"))
        now = time.monotonic()
        if state != seen or pid is None:
            seen, unchanged_since = state, now
        elif now - unchanged_since >= IDLE_SECONDS:
            with contextlib.suppress(ApiException, OSError):
                if not not_ready(world, world.live_users()):
                    return round(now - started, 1)
        time.sleep(SAMPLE_SECONDS)
    return None


def quiet_end(sampler: Sampler, idle_after: float | None) -> dict[str, Any]:
    """The leader at the end of a quiet phase: its RSS, and the fewest tasks, threads and
    descriptors over :data:`QUIET_END_SAMPLES` samples a second apart (what stays: a periodic
    task in flight, the resync's, is not counted as one that never ends)."""
    samples = [sampler.sample(with_apiserver=False)]
    for _ in range(QUIET_END_SAMPLES - 1):
        time.sleep(1.0)
        samples.append(sampler.sample(with_apiserver=False))
    last = samples[-1]
    return {
        "minute": sampler.minute,
        "idle_after_seconds": idle_after,
        "pid": last["leader_pid"] or 0,
        "rss_kib": last["leader_rss_kib"] or 0,
        **{what: min(s[what] or 0 for s in samples) for what in ss.COUNTS},
    }


def settle(world: World, sampler: Sampler, timeout: float) -> float:
    """Wait until every declared user is live and Ready for its generation."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        with contextlib.suppress(ApiException, OSError):
            if not not_ready(world, world.live_users()):
                return time.monotonic() - started
        time.sleep(5)
    return time.monotonic() - started


def verdicts(
    world: World,
    operators: Operators,
    sampler: Sampler,
    endpoint: LiteLLMEndpoint,
    before_foreign: dict[str, Any],
) -> dict[str, Any]:
    key = endpoint.master_key.get_secret_value()
    live = world.live_users()
    unready = not_ready(world, live)
    leader, parsed = sampler.leader_metrics()
    indexed = ss.value(parsed, ss.P + "index_objects", resource=USER_PLURAL)
    versions = {u["metadata"]["uid"]: u["metadata"]["resourceVersion"] for u in live}
    requests = apiserver_requests(world.kubeconfig, GROUP)
    calls = ss.litellm_calls(parsed)
    pid = leader.proc.pid if leader and leader.proc else None
    log(f"quiet check: {2 * RESYNC_SECONDS} s")
    time.sleep(2 * RESYNC_SECONDS)
    leader_after, parsed_after = sampler.leader_metrics()
    same_leader = (
        leader_after is leader and (leader.proc.pid if leader and leader.proc else None) == pid
    )
    litellm_writes = {
        k: v
        for k, v in ss.since(ss.litellm_calls(parsed_after), calls).items()
        if k in ss.LITELLM_WRITES and v
    }
    k8s = difference(apiserver_requests(world.kubeconfig, GROUP), requests)
    after = {u["metadata"]["uid"]: u["metadata"]["resourceVersion"] for u in world.live_users()}
    rewritten = sum(after.get(k) != v for k, v in versions.items())
    state = asyncio.run(litellm_state(endpoint.url, key, list(world.declared.values())))
    mismatches = litellm_mismatches(world, state)
    foreign = foreign_view(state["users"])
    checks = {
        "all_ready": not unready,
        "litellm_exact": not mismatches,
        "foreign_untouched": foreign == before_foreign and len(foreign) == FOREIGN_USERS,
        "indices_equal_live": indexed == len(live),
        "quiet_no_litellm_writes": not litellm_writes and same_leader,
        "quiet_no_k8s_writes": writes(k8s, USER_PLURAL) == 0 and rewritten == 0,
    }
    return {
        "checks": checks,
        "not_ready": unready[:20],
        "litellm_mismatches": mismatches[:50],
        "litellm_mismatch_count": len(mismatches),
        "indexed": indexed,
        "live": len(live),
        "quiet": {
            "litellm_writes": litellm_writes,
            "k8s_requests": k8s,
            "users_rewritten": rewritten,
            "same_leader": same_leader,
        },
        "team_members": len(state["team_members"]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=int(os.environ.get("SOAK_MINUTES", 30)))
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--logs", type=Path, help="keep the operators' logs in this directory")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        workdir = Path(tmp)
        try:
            result = run(args, workdir)
        finally:
            if args.logs:
                args.logs.mkdir(parents=True, exist_ok=True)
                for path in workdir.glob("operator-*.log"):
                    (args.logs / path.name).write_bytes(path.read_bytes())
    result["when"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    result["machine"] = {"cpus": os.cpu_count(), "load_at_end": os.getloadavg()}
    goals = {**result["checks"], "flat": result["flatness"]["ok"]}
    result["ok"] = all(goals.values())
    (args.out / "soak.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    from bench.soak_chart import draw  # matplotlib only when there is something to draw

    draw(result, args.out / "soak.png")
    summary = {k: v for k, v in result.items() if k not in ("samples", "phases")}
    print(json.dumps(summary, indent=2, default=str))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
