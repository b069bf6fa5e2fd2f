# make test: everything CI runs: vet, the race-enabled tests on a real Redis
# (started if none answers), and a small chaos run (worker kills, a Redis
# restart) checked against the simulators' ledgers.
# make demo: the main job on an embedded Redis.
# make browser-test: asynqmon at /monitoring in headless Chromium (Debian's
# `chromium` package); not part of `make test`: .ci/run runs it only where
# Chromium starts, and says so when it does not.
SHELL := /bin/bash
.PHONY: test unit chaos chaos-large demo fuzz browser-test

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

# Signs in to /monitoring through the real API server, finds a refund's task
# by id and checks its decimal amount and result; the screenshot is the CI
# artefact. CHROMIUM names another binary.
ARTIFACTS ?= $(CURDIR)/artifacts
browser-test:
	REFUNDQ_TEST_REDIS_ADDR=$$(bash .ci/redis-up) && export REFUNDQ_TEST_REDIS_ADDR && \
	  REFUNDQ_BROWSER_TEST=1 ARTIFACTS=$(ARTIFACTS) go test -count=1 -run '^TestMonitoringInBrowser$$' -v ./api
