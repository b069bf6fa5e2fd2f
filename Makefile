# make test: everything CI runs: vet, the race-enabled tests on a real Redis
# (started if none answers), and a small chaos run (worker kills, a Redis
# restart) checked against the simulators' ledgers.
# make demo: the main job on an embedded Redis.
# make redis: the walk-through's Redis (refundctl dev-redis): configured as
# deploy/redis.conf ships it, on 127.0.0.1:6380, data in .dev-redis/, its
# REDIS_URL in redis.env (. ./redis.env); Ctrl-C stops it.
# make build: every command in cmd/ into bin/ (refundctl, refund-worker, refund-api, refund-chaos,
# refund-bench, refund-probe).
# make browser-test: asynqmon at /monitoring and the review console at
# /console in headless Chromium (Debian's `chromium` package, which .ci/run
# installs where it is missing); not part of `make test`.
# make bench: refundq against hand-rolled and bare asynq, side by side (cmd/refund-bench).
# make no-build-output: no tracked executable binary or file over 1 MB (.ci/no-build-output).
SHELL := /bin/bash
.PHONY: no-build-output test unit redis chaos chaos-large chaos-quirks chaos-power demo fuzz build tidy-check browser-test bench sentinel deploy-check k8s-schemas k8s-crd-schemas k8s-rules

# Where make build puts the binaries.
BINDIR ?= bin

test: tidy-check unit chaos

# Every command in cmd/ (go build ./cmd/...), one binary each in $(BINDIR).
# -buildvcs=auto stamps the commit into each binary (refundctl --version)
# where git is there, whatever GOFLAGS says.
build:
	mkdir -p $(BINDIR)
	go build -buildvcs=auto -o $(BINDIR)/ ./cmd/...
	@ls $(BINDIR)

# The check proves itself first (in a temporary repository, a committed ELF
# and a 2 MB file must fail it), then checks this repository's tracked files.
no-build-output:
	bash .ci/no-build-output --self-test
	bash .ci/no-build-output

# refundctl dev-redis does the work (installing redis-server with apt-get
# where it is missing), so the walk-through can start it from bin/ as well.
redis:
	mkdir -p $(BINDIR)
	go build -buildvcs=auto -o $(BINDIR)/ ./cmd/refundctl
	$(BINDIR)/refundctl dev-redis --env-file redis.env

# go.mod and go.sum must be what go mod tidy makes of the code.
tidy-check:
	@go mod tidy -diff || { echo "go.mod/go.sum are not tidy: run go mod tidy and commit the result"; exit 1; }

# The tests' Redis is a development one (the machine's, or one started without
# persistence), so the start-up persistence check is a warning there and the
# binaries the tests run accept that it keeps nothing (REFUNDQ_ACCEPT_REDIS_LOSS);
# internal/durability tests the check and the refusal on servers it configures,
# and the README test runs the walk-through without either, on refundctl dev-redis.
unit:
	go vet ./...
	REFUNDQ_TEST_REDIS_ADDR=$$(bash .ci/redis-up) && export REFUNDQ_TEST_REDIS_ADDR && \
	  echo "tests use Redis at $$REFUNDQ_TEST_REDIS_ADDR" && \
	  REFUNDQ_SKIP_REDIS_CHECK=1 REFUNDQ_ACCEPT_REDIS_LOSS=1 go test -race -count=1 -timeout 20m ./...

# The chaos harness starts its own redis-server (AOF) on a free port. CI pins
# the seed (faults, amounts, kill targets) so a failure can be replayed;
# `make chaos CHAOS_SEED=$$RANDOM` explores others.
CHAOS_SEED ?= 7
chaos:
	bash .ci/redis-up --install-only
	go run ./cmd/refund-chaos --race --refunds 300 --workers 3 --kill-every 5s --chaos-for 20s --restart-redis-at 8s \
	  --operator-every 2s --auth-outage 10s --seed $(CHAOS_SEED)

# By hand; its report is in docs/RELIABILITY.md. Workers run with the
# recovery defaults, so a refund whose task an operator's click took away may
# wait minutes: --timeout leaves room for that.
SEED ?= 42
SHAPE ?= documented
chaos-large:
	go run ./cmd/refund-chaos --refunds 5000 --workers 4 --kill-every 20s --chaos-for 3m --restart-redis-at 90s --timeout 30m \
	  --operator-every 2s --auth-outage 20s --shape $(SHAPE) --seed $(SEED)

# By hand: the quirks the providers' documents allow and refundq does not count
# on, in both shapes (docs/RELIABILITY.md).
chaos-quirks:
	go run ./cmd/refund-chaos --refunds 5000 --workers 4 --kill-every 20s --chaos-for 3m --restart-redis-at 90s --timeout 30m \
	  --operator-every 2s --auth-outage 20s --shape $(SHAPE) --quirks --seed $(SEED)

# By hand: a power cut of Redis's machine with the shipped durability
# (appendfsync always) and with the opt-out (everysec, REFUNDQ_ACCEPT_REDIS_LOSS=1):
# what the default is for (docs/RELIABILITY.md, "Durable writes").
POWER_FLAGS = --refunds 2000 --workers 4 --kill-every 20s --chaos-for 2m --restart-redis-at 0 --power-cut-at 70s \
	  --fault-rate 0.05 --timeout 15m --seed $(SEED)
chaos-power:
	go run ./cmd/refund-chaos $(POWER_FLAGS)
	-go run ./cmd/refund-chaos $(POWER_FLAGS) --appendfsync everysec --accept-redis-loss

fuzz:
	bash .ci/fuzz 100000x

demo:
	go run ./cmd/refundctl demo

# Every Test…InBrowser: signs in to /monitoring through the real API server,
# finds a refund's task by id and checks its decimal amount and result; signs
# in to /console, opens a refund in needs_review from the work list, settles
# it and sees it leave the list. The screenshots in $(ARTIFACTS) are the CI
# artefacts. CHROMIUM names another binary.
ARTIFACTS ?= $(CURDIR)/artifacts
browser-test:
	REFUNDQ_TEST_REDIS_ADDR=$$(bash .ci/redis-up) && export REFUNDQ_TEST_REDIS_ADDR && \
	  REFUNDQ_BROWSER_TEST=1 ARTIFACTS=$(ARTIFACTS) go test -count=1 -run 'InBrowser$$' -v ./internal/api

# By hand: every scenario, refundq against a hand-rolled asynq v0.26 handler
# (the same provider call) and a no-op one, arms interleaved, on a
# redis-server of its own, once with persistence off and once durable as
# deploy/redis.conf ships it; then the issue's goals. About 7-8 minutes on
# 2 cores; `make bench BENCH_FLAGS="--reps 1 --only drain --persistence off"`
# for less.
BENCH_FLAGS ?=
bench:
	bash .ci/redis-up --install-only
	go run ./cmd/refund-bench $(BENCH_FLAGS)
# Redis Sentinel: a primary, a replica and three Sentinels on loopback, a
# worker fleet on redis-sentinel://, two forced failovers while refunds move
# (docs/RELIABILITY.md, "Sentinel failover"). By hand: 2.5-3.5 minutes.
sentinel:
	bash .ci/redis-up --install-only
	bash .ci/sentinel-failover

# The deployment files: kubeconform on deploy/k8s (offline, committed
# schemas), docker-compose config, and promtool's check and unit tests of the
# alert rules in deploy/prometheus. docker-compose and promtool are installed
# here when missing. promtool comes from Debian's `prometheus` package (2.42 on
# Debian 12), as docker-compose does: one apt-get of a prebuilt binary, where
# `go install` of prometheus/cmd/promtool would download and build the
# Prometheus module's whole dependency tree (client-go, the cloud SDKs of its
# service discovery) on every fresh machine. The package brings the server
# too: these machines' policy-rc.d keeps apt from starting it; on a machine
# with systemd, `systemctl disable --now prometheus` after the first run.
deploy-check:
	command -v docker-compose >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose)
	command -v promtool >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus)
	bash .ci/deploy-check

# Regenerates deploy/k8s/schemas from Kubernetes' OpenAPI document, taken
# from the k8s.io/kubernetes Go module (about 18 MB through the module proxy).
K8S_VERSION ?= v1.34.4
k8s-schemas:
	go run deploy/k8s/schemas/gen.go -swagger "$$(go mod download -json k8s.io/kubernetes@$(K8S_VERSION) | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",/\1/p')/api/openapi-spec/swagger.json"

# Regenerates the ServiceMonitor and PrometheusRule schemas in
# deploy/k8s/schemas from prometheus-operator's CRDs (its Go module, about
# 4 MB through the module proxy; jsonnet/prometheus-operator/*-crd.json).
PROMETHEUS_OPERATOR_VERSION ?= v0.85.0
k8s-crd-schemas:
	go run deploy/k8s/schemas/gen.go -crds "$$(go mod download -json github.com/prometheus-operator/prometheus-operator@$(PROMETHEUS_OPERATOR_VERSION) | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",/\1/p')/jsonnet/prometheus-operator"

# Writes deploy/k8s/monitoring/prometheusrule.yaml from
# deploy/prometheus/rules.yaml (.ci/prometheusrule); deploy-check fails when
# the committed file is not what this makes.
k8s-rules:
	bash .ci/prometheusrule >deploy/k8s/monitoring/prometheusrule.yaml
