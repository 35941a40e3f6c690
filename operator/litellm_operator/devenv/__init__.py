"""Developer environment helpers: a real Kubernetes control plane and a LiteLLM testbed."""
