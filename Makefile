# litellm-operator developer entry points. `make test` and `make demo` are the quick start.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
SRC := operator/litellm_operator

.PHONY: help venv lock test-deps-latest test-matrix test-litellm test-litellm-matrix lint typecheck unit integration e2e test test-deploy image node-assets crds envtest gitops-check helm litellm up down demo bench soak clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

LOCK := requirements/dev.lock

$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -c $(LOCK) -e '.[test]'
	touch $(STAMP)

venv: $(STAMP) ## create .venv and install the project with its test extra, at the locked versions

lock: ## re-resolve requirements/*.lock from pyproject.toml (pip-tools), then run `make test`
	@hack/lock.sh

test-deps-latest: ## the unit tier and kopf's internals checks on the newest dependencies, unpinned
	@hack/deps-latest.sh

lint: venv ## ruff (lint + format check), mypy --strict, import-linter layers
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

crds: venv ## regenerate deploy/crds, the Helm chart's copy and the README field table
	$(VENV)/bin/litellm-operator crds --output deploy/crds
	$(VENV)/bin/litellm-operator crds --output deploy/helm/litellm-operator/crds
	$(PY) hack/readme_fields.py

envtest: ## build (or reuse) kube-apiserver + etcd and print their directory
	@hack/envtest-assets.sh

gitops-check: ## build (or reuse) the Flux kstatus / Argo CD Lua checkers and print their directory
	@hack/gitops-check.sh

helm: ## build (or reuse) helm from the Go module proxy and print its path
	@hack/helm-assets.sh

# The project's own LiteLLM (devenv/litellm.py), unless LITELLM_URL + LITELLM_MASTER_KEY name one:
# installed once into ~/.cache/litellm-operator/litellm (PostgreSQL and Node.js by apt-get if
# missing, LiteLLM by pip, the query engine by npm), progress on stderr. Instances start per use.
WITH_LITELLM = if [ -z "$${LITELLM_URL:-}" ] || [ -z "$${LITELLM_MASTER_KEY:-}" ]; then \
	  $(PY) -m devenv.litellm install || [ -z "$${CI:-}" ]; fi

litellm: venv ## install (or check) the project's LiteLLM in the cache
	$(PY) -m devenv.litellm install

# Every tier the machine supports: unit always; integration needs a LiteLLM (LITELLM_URL, or the
# project's own); e2e also needs a control plane (KUBECONFIG, KUBEBUILDER_ASSETS, or a Go
# toolchain to build the envtest binaries). On CI a tier that cannot run is a failure, not a skip.
test: lint ## lint, then unit + integration + e2e tests
	@set -euo pipefail; \
	$(WITH_LITELLM); \
	if [ -z "$${KUBECONFIG:-}" ] && [ -z "$${KUBEBUILDER_ASSETS:-}" ]; then \
	  if assets=$$(hack/envtest-assets.sh); then export KUBEBUILDER_ASSETS=$$assets; \
	  elif [ -n "$${CI:-}" ]; then echo "envtest binaries could not be built" >&2; exit 1; \
	  else echo "!!! no control plane: e2e tests will be SKIPPED (set KUBECONFIG or KUBEBUILDER_ASSETS)" >&2; fi; \
	fi; \
	$(PY) -m pytest tests $(PYTEST_ARGS)

# The shipped image on a real node (devenv/node.py): `docker run` hardened, `helm install`,
# `kubectl apply -k`, failover, drain, upgrade, uninstall. Needs root; installs what it lacks
# with apt-get (containerd, runc, CNI plugins, debootstrap, docker.io) and builds the node's
# binaries from the Go module proxy into the cache, like the envtest ones. The builds run first
# (their progress on the terminal); the tests then find them cached.
DEPLOY_PACKAGES := docker.io containerd runc containernetworking-plugins debootstrap
test-deploy: venv ## the image, Helm and kustomize installs on a real node (root; see README)
	@set -euo pipefail; \
	missing=$$(for p in $(DEPLOY_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; fi; \
	$(WITH_LITELLM); \
	hack/node-assets.sh >/dev/null; hack/helm-assets.sh >/dev/null; hack/image.sh >/dev/null; \
	$(PY) -m pytest tests/deploy -m deploy $(PYTEST_ARGS)

image: ## build the operator's image (base from Debian packages where Docker Hub is out of reach)
	@hack/image.sh

node-assets: ## build (or reuse) kubelet & co. for the deploy tests' node and print their directory
	@hack/node-assets.sh

unit: venv ## unit tests only (no LiteLLM, no Kubernetes)
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

integration: venv ## client tests against a real LiteLLM
	@set -euo pipefail; $(WITH_LITELLM); \
	$(PY) -m pytest tests/integration $(PYTEST_ARGS)

e2e: venv ## operator tests against a real control plane and a real LiteLLM
	@set -euo pipefail; $(WITH_LITELLM); \
	if [ -z "$${KUBECONFIG:-}" ] && [ -z "$${KUBEBUILDER_ASSETS:-}" ]; then export KUBEBUILDER_ASSETS=$$(hack/envtest-assets.sh); fi; \
	$(PY) -m pytest tests/e2e $(PYTEST_ARGS)

test-matrix: venv ## the CRDs, admission policy, RBAC and core e2e scenarios on each Kubernetes of K8S_MATRIX
	@set -euo pipefail; $(WITH_LITELLM); hack/k8s-matrix.sh

test-litellm: venv ## the integration tier and core e2e scenarios on LITELLM_VERSION (default: every version of the matrix)
	@set -euo pipefail; \
	if [ -z "$${KUBECONFIG:-}" ] && [ -z "$${KUBEBUILDER_ASSETS:-}" ]; then export KUBEBUILDER_ASSETS=$$(hack/envtest-assets.sh); fi; \
	$(PY) hack/litellm_matrix.py $(LITELLM_VERSION) $(PYTEST_ARGS)

test-litellm-matrix: venv ## every LiteLLM version of the matrix, then the README's compatibility table
	@set -euo pipefail; \
	if [ -z "$${KUBECONFIG:-}" ] && [ -z "$${KUBEBUILDER_ASSETS:-}" ]; then export KUBEBUILDER_ASSETS=$$(hack/envtest-assets.sh); fi; \
	$(PY) hack/litellm_matrix.py --readme $(PYTEST_ARGS)

up: venv ## start a control plane, a LiteLLM and the operator in the background (.dev/env)
	@hack/dev.sh up

down: ## stop everything `make up` started
	@hack/dev.sh down

demo: venv ## make up, apply examples/, wait for Ready, show the team and users from both sides
	@hack/dev.sh demo

bench: venv ## the operator against floors measured in the same run (BENCH_USERS=100,1000; 10000 on demand)
	@set -euo pipefail; $(WITH_LITELLM); \
	if [ -z "$${KUBECONFIG:-}" ] && [ -z "$${KUBEBUILDER_ASSETS:-}" ]; then export KUBEBUILDER_ASSETS=$$(hack/envtest-assets.sh); fi; \
	status=0; $(PY) bench/bench_operator.py --users $${BENCH_USERS:-100,1000} || status=$$?; \
	$(PY) bench/report.py --readme; exit $$status

soak: venv ## hours of churn, relists and faults compressed into SOAK_MINUTES (default 30); not in `make test`
	@set -euo pipefail; $(WITH_LITELLM); \
	if [ -z "$${KUBEBUILDER_ASSETS:-}" ]; then export KUBEBUILDER_ASSETS=$$(hack/envtest-assets.sh); fi; \
	$(PY) bench/soak.py --minutes $${SOAK_MINUTES:-30} $(SOAK_ARGS)

clean: ## remove the venv and caches (not ~/.cache/litellm-operator: envtest, LiteLLM)
	rm -rf $(VENV) .venv-latest .mypy_cache .ruff_cache .pytest_cache .hypothesis
