"""``helm install`` of deploy/helm/litellm-operator on the real node, then what a release lives
through: the leader pod deleted, a node drain, ``helm upgrade`` to a new image tag, and the
README's uninstall. The tests run in this order on one release (module scope)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.deploy.harness import (
    CHART,
    DEPLOYMENT,
    NAMESPACE,
    DeployEnv,
    apply_example_users,
    apply_policy,
    assert_no_restarts,
    assert_readme_uninstall,
    assert_rolled_out,
    delete_namespaces,
    leader_pod,
    lease_holder,
    measured,
    metric,
    operator_pods,
    pod_metrics,
    restarts,
    wait_for,
)

pytestmark = [pytest.mark.deploy]

RELEASE = "litellm-operator"
NODE = "deploy-node"
LITELLM_WRITES = ("/user/new", "/user/update", "/user/delete")


@pytest.fixture(scope="module")
def release(deploy_env: DeployEnv) -> Iterator[DeployEnv]:
    env = deploy_env
    env.master_key_secret()
    try:
        env.helm(
            "install", RELEASE, str(CHART), "--namespace", NAMESPACE,
            "--set", f"image.repository={env.repository}", "--set", f"image.tag={env.tag}",
            "--set", f"litellm.url={env.litellm.url}", "--wait", "--timeout=4m",
        )  # fmt: skip
        yield env
    finally:
        env.kubectl("uncordon", NODE, check=False)
        env.kubectl("delete", "litellmusers", "--all", "-A", "--wait", check=False, timeout=60)
        env.kubectl("delete", "provisioningpolicies", "--all", "--wait", check=False, timeout=60)
        env.helm("uninstall", RELEASE, "--namespace", NAMESPACE, "--ignore-not-found")
        delete_namespaces(env, "team-a", "platform", NAMESPACE)


def test_helm_install_rolls_out_and_reconciles_the_examples(release: DeployEnv) -> None:
    assert_rolled_out(release)
    apply_policy(release)
    apply_example_users(release)
    assert_no_restarts(release)


def writes(text: str) -> float:
    return sum(
        metric(text, "litellm_operator_litellm_requests_total", endpoint=e) for e in LITELLM_WRITES
    )


def test_a_standby_leads_when_the_leader_pod_is_deleted(release: DeployEnv) -> None:
    env = release
    leader = leader_pod(env)
    assert leader is not None
    standby = next(p for p in operator_pods(env) if p["metadata"]["name"] != leader)
    standby_name = standby["metadata"]["name"]

    started = time.monotonic()
    env.kubectl("-n", NAMESPACE, "delete", "pod", leader, "--wait=false")
    wait_for(
        "the standby to lead", lambda: lease_holder(env).startswith(f"{standby_name}_"), 60, 0.1
    )
    takeover = time.monotonic() - started
    measured(f"failover (leader pod deleted -> standby holds the Lease): {takeover:.1f} s")
    assert takeover < 30

    assert_rolled_out(env)  # the Deployment replaced the deleted pod; nothing restarted
    ip = standby["status"]["podIP"]
    wait_for(
        "the new leader to resume the users",
        lambda: metric(pod_metrics(ip), "litellm_operator_reconciles_total") >= 2,
        timeout=60,
    )
    text = pod_metrics(ip)
    assert writes(text) == 0, "the new leader wrote to LiteLLM: a user was reconciled twice"
    assert metric(text, "litellm_operator_reconciles_total", result="changed") == 0


def test_a_drain_honours_the_pod_disruption_budget(release: DeployEnv) -> None:
    env = release
    # The second eviction is refused for as long as the drain runs: it times out.
    env.kubectl(
        "drain", NODE, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=25s",
        check=False, timeout=90,
    )  # fmt: skip
    pods = operator_pods(env)
    running = [p for p in pods if p["status"].get("phase") == "Running"]
    assert len(running) == 1, "the drain evicted past the PodDisruptionBudget (minAvailable 1)"
    survivor = running[0]["metadata"]["name"]
    wait_for("the surviving pod to lead", lambda: leader_pod(env) == survivor, 60)
    env.kubectl("uncordon", NODE)
    assert_rolled_out(env)
    measured("drain: one pod evicted, the second refused by the PodDisruptionBudget")


def test_helm_upgrade_rolls_one_pod_at_a_time_with_a_handover(release: DeployEnv) -> None:
    env = release
    samples: list[dict[str, Any]] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            pods = env.get("-n", NAMESPACE, "pods", "-l", "app.kubernetes.io/name=litellm-operator")
            deployment = env.get("-n", NAMESPACE, "deployment", DEPLOYMENT)
            images = {
                p["metadata"]["name"]: p["spec"]["containers"][0]["image"] for p in pods["items"]
            }
            holder = lease_holder(env)
            live = [p for p in pods["items"] if not p["metadata"].get("deletionTimestamp")]
            samples.append(
                {
                    "pods": len(live),
                    "available": deployment["status"].get("availableReplicas", 0),
                    "holder_image": next(
                        (i for n, i in images.items() if holder.startswith(f"{n}_")), None
                    ),
                }
            )
            time.sleep(0.3)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    started = time.monotonic()
    try:
        env.helm(
            "upgrade", RELEASE, str(CHART), "--namespace", NAMESPACE, "--reuse-values",
            "--set", f"image.tag={env.next_tag}", "--wait", "--timeout=4m",
        )  # fmt: skip
        pods = assert_rolled_out(env)
    finally:
        done.set()
        watcher.join()
    measured(f"helm upgrade (2 pods, one at a time): {time.monotonic() - started:.1f} s")
    new_image = f"{env.repository}:{env.next_tag}"
    assert {p["spec"]["containers"][0]["image"] for p in pods} == {new_image}
    # Terminating pods aside (an old leader finishing its handlers), replicas + maxSurge 1.
    assert max(s["pods"] for s in samples) <= 3, "more than one pod surged at once"
    assert min(s["available"] for s in samples) >= 1, "the upgrade left no pod available"
    holders = [s["holder_image"] for s in samples if s["holder_image"]]
    assert holders[-1] == new_image, "no new pod took the Lease over"
    assert [restarts(p) for p in pods] == [0, 0]


def test_the_readme_uninstall_leaves_only_what_it_promises(release: DeployEnv) -> None:
    env = release

    def helm_uninstall() -> None:
        env.helm("uninstall", RELEASE, "--namespace", NAMESPACE, "--wait")

    assert_readme_uninstall(env, helm_uninstall)

    def release_objects() -> str:
        return env.kubectl(
            "get", "all,configmaps,serviceaccounts,roles,rolebindings,poddisruptionbudgets",
            "--namespace", NAMESPACE, "-l", f"app.kubernetes.io/instance={RELEASE}", "-o", "name",
        ).strip()  # fmt: skip

    # The pods finish terminating (each operator lets kopf finish) after helm returns.
    wait_for("the release's objects to be gone", lambda: release_objects() == "", timeout=90)
    cluster_roles = env.kubectl(
        "get", "clusterroles", "-o", "name", "-l", f"app.kubernetes.io/instance={RELEASE}"
    )
    assert cluster_roles.strip() == ""
