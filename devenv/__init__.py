"""The project's development environment: what ``make test``, ``make up``/``demo`` and
``make bench`` run the operator against. Development tooling only: it is not part of the
``litellm-operator`` wheel (which ships ``operator/litellm_operator`` alone), and
``litellm_operator`` never imports it (an import-linter contract checks that).

- :mod:`devenv.process`: liveness of recorded processes (zombie-aware, PID-reuse-aware),
  pidfiles, stopping process groups.
- :mod:`devenv.controlplane`: a real Kubernetes control plane (etcd + kube-apiserver), run the
  way controller-runtime's envtest does.
- :mod:`devenv.postgres`: a throw-away PostgreSQL cluster from the machine's PostgreSQL server
  binaries (Debian's), run as the ``postgres`` user when we are root.
- :mod:`devenv.litellm`: a pinned LiteLLM proxy from PyPI on such a cluster, installed once into
  a cache and started per instance from a pre-migrated template database, offline: Prisma's query
  engine runs as WebAssembly behind ``devenv/query-engine/query-engine.mjs``.
- :mod:`devenv.node`: a real one-node cluster (that control plane serving pods, containerd,
  kubelet, the controllers, kube-proxy, a bridge) for ``make test-deploy``: the shipped image in
  real pods.

The package is importable from the repository root (pytest's ``pythonpath``, ``bench/``,
``hack/dev.sh`` set it up); each module with a CLI documents it in its docstring.
"""
