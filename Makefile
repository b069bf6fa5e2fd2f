# make test: everything CI runs: vet, the race-enabled tests on a real Redis
# (started if none answers), and a small chaos run (worker kills, a Redis
# restart) checked against the simulators' ledgers.
# make demo: the main job on an embedded Redis.
SHELL := /bin/bash
.PHONY: test unit chaos chaos-large demo fuzz sentinel deploy-check k8s-schemas

test: unit chaos

unit:
	go vet ./...
	REFUNDQ_TEST_REDIS_ADDR=$$(bash .ci/redis-up) && export REFUNDQ_TEST_REDIS_ADDR && \
	  echo "tests use Redis at $$REFUNDQ_TEST_REDIS_ADDR" && \
	  go test -race -count=1 -timeout 20m ./...

# The chaos harness starts its own redis-server (AOF) on a free port. CI pins
# the seed (faults, amounts, kill targets) so a failure can be replayed;
# `make chaos CHAOS_SEED=$$RANDOM` explores others.
CHAOS_SEED ?= 7
chaos:
	bash .ci/redis-up --install-only
	go run ./cmd/refund-chaos --race --refunds 300 --workers 3 --kill-every 5s --chaos-for 20s --restart-redis-at 8s --seed $(CHAOS_SEED)

# By hand; its report is in docs/RELIABILITY.md.
SEED ?= 42
chaos-large:
	go run ./cmd/refund-chaos --refunds 5000 --workers 4 --kill-every 20s --chaos-for 3m --restart-redis-at 90s --timeout 20m --seed $(SEED)

fuzz:
	bash .ci/fuzz 10s

demo:
	go run ./cmd/refundctl demo

# Redis Sentinel: a primary, a replica and three Sentinels on loopback, a
# worker fleet on redis-sentinel://, two forced failovers while refunds move
# (docs/RELIABILITY.md, "Sentinel failover"). By hand: 2.5-3.5 minutes.
sentinel:
	bash .ci/redis-up --install-only
	bash .ci/sentinel-failover

# The deployment files: kubeconform on deploy/k8s (offline, committed
# schemas) and docker-compose config (installed here when missing).
deploy-check:
	command -v docker-compose >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose)
	bash .ci/deploy-check

# Regenerates deploy/k8s/schemas from Kubernetes' OpenAPI document, taken
# from the k8s.io/kubernetes Go module (about 18 MB through the module proxy).
K8S_VERSION ?= v1.34.4
k8s-schemas:
	go run deploy/k8s/schemas/gen.go -swagger "$$(go mod download -json k8s.io/kubernetes@$(K8S_VERSION) | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",/\1/p')/api/openapi-spec/swagger.json"
