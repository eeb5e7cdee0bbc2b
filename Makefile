# Gantry's build, test and benchmark entry points. `make test` is the one
# command that runs every test on a fresh machine; it installs what the tests
# need when missing (see scripts/test-deps.sh).

GO       ?= go
BIN      ?= bin/gantry
export CGO_ENABLED ?= 0
TEST_OUTPUT ?= $(CURDIR)/test-output
export GANTRY_TEST_OUTPUT := $(TEST_OUTPUT)

# Everything but the packages that drive Docker and the browser heavily,
# which run one package at a time so timing-sensitive tests are not starved.
HEAVY_PKGS := gantry/e2e gantry/node/runner gantry/node/toolbox gantry/ui
# The concurrent packages run once, under the race detector (the runner,
# which drives Docker, too, on its own); files built with !race
# (store/scale_test.go) run in a run of their own. The browser tests in ui/
# run without it: the console they drive is a separate gantry process, so
# the detector would watch only the test's own client.
RACE_PKGS := gantry/store gantry/raftcluster gantry/node gantry/node/cluster gantry/node/reports gantry/node/api gantry/node/scheduler gantry/node/auth gantry/node/registry
LIGHT_PKGS = $(filter-out $(HEAVY_PKGS) $(RACE_PKGS),$(shell $(GO) list ./...))

.PHONY: build test test-deps unit e2e conformance bench vet fuzz fault clean

build:
	CGO_ENABLED=0 $(GO) build -ldflags "-X gantry/version.commit=$$(git rev-parse HEAD 2>/dev/null)" -o $(BIN) .

test-deps:
	@bash scripts/test-deps.sh

vet:
	$(GO) vet ./...

# Unit and end-to-end tests, the race detector on the concurrent packages,
# a short run of every fuzz target, then the OCI conformance suite against
# a real gantry server.
# test-deps and vet run one after the other: a recursive `make -j2` hung CI
# (its sub-make lost its children: "wait: No child processes").
test: test-deps vet
	@mkdir -p $(TEST_OUTPUT)
	@echo "test output (screenshots, logs) goes to $(TEST_OUTPUT)"
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 15m $(RACE_PKGS)
	$(GO) test -count=1 -timeout 10m $(LIGHT_PKGS)
	$(GO) test -count=1 -timeout 10m -run 'TestListJobsStaysFastWith100kJobs$$' ./store/
	GO=$(GO) bash scripts/fuzz.sh 3s
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 20m ./node/runner/
	$(GO) test -count=1 -timeout 20m ./ui/
	$(GO) test -count=1 -timeout 10m ./node/toolbox/
	$(GO) test -count=1 -timeout 30m -p 1 -parallel 3 ./e2e/
	bash scripts/conformance.sh

# Every fuzz target for FUZZTIME each, one after another (make test runs
# each for a few seconds); FUZZ=regexp picks targets by package or name.
FUZZTIME ?= 10m
fuzz:
	@GO=$(GO) bash scripts/fuzz.sh $(FUZZTIME) '$(FUZZ)'

# The fault campaign (e2e/fault_test.go) with FAULT_ROUNDS faults, 100 by
# default (make test runs 10); FAULT_SEED=N replays one campaign.
FAULT_ROUNDS ?= 100
fault: test-deps
	@mkdir -p $(TEST_OUTPUT)
	FAULT_ROUNDS=$(FAULT_ROUNDS) $(GO) test -count=1 -timeout 180m -run 'TestFaultCampaign$$' -v ./e2e/

bench: build
	@bash scripts/bench.sh

clean:
	rm -rf bin $(TEST_OUTPUT) results
