# Engram — the two commands a newcomer needs are `make run` and `make test`.

GO            ?= go
BIN           := bin/engram
GOLANGCI_LINT := github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0
PKGS          := ./...
FUZZTIME      ?= 30s
# The version engram --version prints: the nearest tag, the commit, and
# "-dirty" when the work tree has changes.
VERSION       ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS       := -X main.buildVersion=$(VERSION)
# Each package's test binary may run this long; the packages run side by
# side, so the whole of make test stays under it too (CI allows 90 minutes).
TEST_TIMEOUT  ?= 45m

.PHONY: all build install run test test-short soak lint fmt vet migrate services bench bench-go fuzz clean

all: build

## build: compile the engram binary into bin/
build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/engram

## install: install engram into $(go env GOBIN) (default ~/go/bin), to run it as plain `engram`
install:
	$(GO) install -ldflags "$(LDFLAGS)" ./cmd/engram

## services: start (or install) the local PostgreSQL and Redis
services:
	@scripts/services.sh

## run: run Engram locally on 127.0.0.1:8080 (creates the engram database)
run: services build
	./$(BIN) serve

## migrate: apply the database migrations
migrate: build
	./$(BIN) migrate

## test: every test (unit, integration, end-to-end) with the race detector (~7 min on a quiet 2-core machine)
test:
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) $(PKGS)

## test-short: the unit tests only, no PostgreSQL and no engram process (about a minute)
test-short:
	$(GO) test -short -count=1 -timeout 5m $(PKGS)

## soak: the long stress test (two instances, restarts, a crash, many writers) for SOAK_DURATION
SOAK_DURATION ?= 5m
soak:
	ENGRAM_SOAK=1 ENGRAM_SOAK_DURATION=$(SOAK_DURATION) $(GO) test -count=1 -timeout 2h -v -run '^TestSoak$$' ./test/

## lint: gofmt, go vet and golangci-lint (pinned)
lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet $(PKGS)
	$(GO) run $(GOLANGCI_LINT) run $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

vet:
	$(GO) vet $(PKGS)

## bench: measure Engram against the raw limits of this machine, write docs/benchmarks.md (~5 min)
bench: services
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/engram
	$(GO) build -o bin/engram-load ./cmd/engram-load
	./bin/engram-load bench -engram $(BIN) -out docs/benchmarks.md

## bench-go: Go benchmarks (event store append and read paths)
bench-go:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

## fuzz: run every fuzz target for FUZZTIME each
fuzz:
	@for pkg in $$($(GO) list $(PKGS)); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "fuzz $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

clean:
	rm -rf bin
