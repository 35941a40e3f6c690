"""litellm-operator: declare LiteLLM users, budgets and team memberships as Kubernetes resources."""

__version__ = "0.1.0"
