"""``kubectl apply -k`` of deploy/ on the real node, through an overlay that sets the image and
LiteLLM's URL as the README tells users to, then the README's uninstall (``kubectl delete -k``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.deploy.harness import (
    DEPLOY,
    NAMESPACE,
    DeployEnv,
    apply_example_users,
    apply_policy,
    assert_no_restarts,
    assert_readme_uninstall,
    assert_rolled_out,
    delete_namespaces,
)

pytestmark = [pytest.mark.deploy]

SHIPPED_IMAGE = "ghcr.io/litellm-operator/litellm-operator"


def write_overlay(env: DeployEnv, directory: Path) -> Path:
    overlay = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [os.path.relpath(DEPLOY, directory)],
        "images": [{"name": SHIPPED_IMAGE, "newName": env.repository, "newTag": env.tag}],
        "patches": [
            {
                "patch": yaml.safe_dump(
                    {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "metadata": {"name": "litellm-operator", "namespace": NAMESPACE},
                        "data": {"LITELLM_URL": env.litellm.url},
                    }
                )
            }
        ],
    }
    (directory / "kustomization.yaml").write_text(yaml.safe_dump(overlay))
    return directory


@pytest.fixture(scope="module")
def applied(deploy_env: DeployEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    env = deploy_env
    overlay = write_overlay(env, tmp_path_factory.mktemp("overlay"))
    env.master_key_secret()
    try:
        env.kubectl("apply", "-k", str(overlay))
        yield overlay
    finally:
        env.kubectl("delete", "litellmusers", "--all", "-A", "--wait", check=False, timeout=60)
        env.kubectl("delete", "provisioningpolicies", "--all", "--wait", check=False, timeout=60)
        env.kubectl("delete", "-k", str(overlay), "--ignore-not-found", check=False, timeout=120)
        delete_namespaces(env, "team-a", "platform", NAMESPACE)


def test_kubectl_apply_k_rolls_out_and_reconciles_the_examples(
    deploy_env: DeployEnv, applied: Path
) -> None:
    assert_rolled_out(deploy_env)
    apply_policy(deploy_env)
    apply_example_users(deploy_env)
    assert_no_restarts(deploy_env)


def test_the_readme_uninstall_leaves_only_what_it_promises(
    deploy_env: DeployEnv, applied: Path
) -> None:
    env = deploy_env

    def delete_k() -> None:
        env.kubectl("delete", "-k", str(applied), "--wait", timeout=180)

    assert_readme_uninstall(env, delete_k)
    namespaces = env.kubectl("get", "namespaces", "-o", "name")
    assert f"namespace/{NAMESPACE}" not in namespaces, "kubectl delete -k left the namespace"
