# rosti — the two commands of the README are `make serve` and `make test`.
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/rosti-paas/rosti/cmd.version=$(VERSION)
BIN := bin/rosti
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
DATA ?= $(CURDIR)/.data
# A test run gets this much time as a whole; CI allows 90 minutes.
TEST_TIMEOUT ?= 20m

.PHONY: build serve test check lint bench fuzz deps-serve deps-test

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) .

deps-serve:
	scripts/deps.sh serve

deps-test:
	scripts/deps.sh test

# Installs what is missing, builds, and runs rosti with its data under
# ./.data; the API is at http://localhost:8080/ and apps at http://<app>.localhost/.
serve: deps-serve build
	$(BIN) serve --data $(DATA)

lint:
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

test: deps-test build lint
	CGO_ENABLED=0 ROSTI_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...
	$(MAKE) fuzz

# The quick loop while coding: vet and the tests that need neither root
# nor containerd (no end-to-end ones); make test runs everything.
check:
	$(GO) vet ./...
	CGO_ENABLED=0 $(GO) test -short -count=1 ./...

# Short fuzzing runs on top of the seed corpora (testdata/fuzz, which
# plain go test replays): the API's request decoding, and the proxy fast
# path's parsers against net/http's.
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzAppRequest$$' -fuzztime 20s ./server/rostiv1
	$(GO) test -run '^$$' -fuzz '^FuzzFastPathRequest$$' -fuzztime 8s ./proxy
	$(GO) test -run '^$$' -fuzz '^FuzzFastPathResponse$$' -fuzztime 8s ./proxy

bench:
	$(GO) test -run '^$$' -bench . -benchtime 3s ./server/rostiv1 ./server/drycc ./web
