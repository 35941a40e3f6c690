"""Shared pytest wiring: the real LiteLLM and the real Kubernetes control plane as session fixtures."""

pytest_plugins = ["tests.fixtures.litellm", "tests.fixtures.kube"]
