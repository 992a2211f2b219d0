# One entry point for developers and CI (.ci/run calls `make setup` and `make test`).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: setup envtest chart-tools image-tools test lint typecheck unit integration chaos crds \
	demo bench clean image image-context lock release registry node

## setup: create .venv, install the project with every extra and the test kit, build/fetch
## the envtest binaries and the chart's checkers (promtool, checkov), install buildah,
## mmdebstrap and runc (apt-get) for the image, and the test node's kubelet/runc/containerd
setup: $(VENV)/.installed envtest chart-tools image-tools registry node

$(VENV)/.installed: pyproject.toml testkit/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]' -e ./testkit
	touch $@

envtest:
	@bash hack/envtest.sh >/dev/null
	@bash hack/envtest-oldest.sh >/dev/null

chart-tools:
	@bash hack/promtool.sh >/dev/null
	@bash hack/checkov.sh >/dev/null

## node: build the test node's kubelet, runc and pause image once; apt-get containerd, CNI
## plugins, libseccomp-dev, iptables when absent (tests/node runs them)
node:
	@bash hack/node.sh >/dev/null

image-tools:
	@bash hack/image/install-tools.sh

## test: everything CI checks — lint, types, import contracts, all test tiers, and the image
##       (built, then smoke-tested)
test: lint typecheck
	@command -v buildah >/dev/null || { echo "buildah is missing: run make setup" >&2; exit 1; }
	$(PY) hack/image/build.py image
	$(PY) -m pytest

lint:
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/lint-imports

typecheck:
	$(PY) -m mypy

unit:
	$(PY) -m pytest tests/unit

integration:
	$(PY) -m pytest tests/integration

chaos:
	$(PY) -m pytest tests/chaos

## image: build localhost/wt-operator:<version> with buildah (docs/image.md); BASE_IMAGE and
##        PIXI_IMAGE select real base images instead of the local ones, IMAGE another tag
image: $(VENV)/.installed
	$(PY) hack/image/build.py image $(if $(IMAGE),--tag $(IMAGE)) \
		$(if $(BASE_IMAGE),--base-image $(BASE_IMAGE)) $(if $(PIXI_IMAGE),--pixi-image $(PIXI_IMAGE))

## release: push the image and the chart (pinned to the image's digest) to an OCI registry:
##          make release REGISTRY=ghcr.io/acme [VERSION=x.y.z] [INSECURE=1 for plain HTTP];
##          then helm install oci://$(REGISTRY)/charts/wt-operator --version x.y.z
release: $(VENV)/.installed envtest
	@test -n "$(REGISTRY)" || { echo "make release needs REGISTRY=host[:port][/path]" >&2; exit 1; }
	$(PY) hack/release.py --registry $(REGISTRY) $(if $(VERSION),--version $(VERSION)) \
		$(if $(IMAGE),--image $(IMAGE)) $(if $(INSECURE),--insecure)

## registry: build distribution's OCI registry once (the release tests start it)
registry:
	@bash hack/registry.sh >/dev/null

## image-context: the build context of a release build (docker build -f operator/Dockerfile DIR)
IMAGE_CONTEXT ?= build/image-context
image-context: $(VENV)/.installed
	$(PY) hack/image/build.py context $(IMAGE_CONTEXT) $(if $(ARCH),--arch $(ARCH))

## lock: re-pin the image's Python packages (operator/requirements.lock) after changing
##       the dependencies or the operator extra in pyproject.toml
lock: $(VENV)/.installed
	$(PY) -m pip install --quiet 'uv==0.13.8'
	$(PY) hack/image/lock.py

## crds: regenerate crds/ (and the chart's copy) from hack/gen_crd.py
crds:
	$(PY) hack/gen_crd.py
	bash hack/sync_chart_crds.sh

## demo: a real operator on a real API server, end to end, then torn down
demo: setup
	$(PY) hack/demo.py

## bench: issue 13's table, median of 3 rounds (docs/performance.md; JSON in benchmarks/results/);
##        python -m benchmarks --profile for the py-spy profiles
bench: setup
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
