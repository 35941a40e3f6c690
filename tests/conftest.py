"""Shared pytest wiring: a real LiteLLM and a real Kubernetes API server as session fixtures."""

pytest_plugins = ["tests.fixtures.litellm", "tests.fixtures.kube", "tests.fixtures.dev"]
