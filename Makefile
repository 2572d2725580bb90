# Rampart. `make run` starts everything in one process; `make test` runs every test.
# Only Go is required: the embedded Temporal server, SQLite and the vendor simulators
# are compiled in. PostgreSQL-backed tests run when RAMPART_TEST_POSTGRES_DSN is set
# (.ci/run sets it; RAMPART_REQUIRE_POSTGRES=1 makes their absence a failure).

GO        ?= go
export GOTOOLCHAIN := local
BIN       := bin/rampart
PKGS      := ./...
TESTFLAGS ?= -count=1 -timeout 30m

.PHONY: run build test test-short lint bench clean

build:
	$(GO) build -o $(BIN) ./cmd/rampart

run: build
	./$(BIN) dev

test:
	$(GO) vet $(PKGS)
	$(GO) test $(TESTFLAGS) $(PKGS)

# The fast tests: everything but the end-to-end ones that link the Temporal server.
test-short:
	$(GO) test -count=1 -short $(PKGS)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

# Benchmarks: the webhook handler alone, then the end-to-end pipeline against the
# embedded server beside a hand-written workflow of the same shape (docs/BENCHMARKS.md).
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count=1 ./server/ingest/ ./server/telemetry/ ./policy/ ./playbook/ ./store/ ./cmd/rampart/internal/codec/
	RAMPART_BENCH_E2E=1 $(GO) test -run '^$$' -bench 'Pipeline|Interpreter' -benchtime 1x -count=1 -timeout 30m ./cmd/rampart/

clean:
	rm -rf bin .rampart
