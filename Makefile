# eventpipe — see README.md. `make run` and `make test` are the two commands.
GO       ?= go
BIN      := bin/eventpipe
# An execution count, not a duration: Go 1.26's fuzz coordinator can report a
# spurious "context deadline exceeded" at the end of a timed run (go.dev/issue/75804).
FUZZTIME ?= 50000x
PKGS     := ./...

WASI_GO  := GOOS=wasip1 GOARCH=wasm $(GO) build -buildmode=c-shared
# Where `make conformance` writes the rebuilt non-Go conformance plugins.
CONFORMANCE_OUT ?= host/testdata/conformance
WAT_OUT ?= .

.PHONY: all build run test unit race fuzz bench bench-benthos lint vet fmt clean plugins conformance wat

all: build

# The commit and build date go into `eventpipe version`.
LDFLAGS  := -X github.com/eventpipe/eventpipe/internal/cli.Commit=$(shell git rev-parse --short=12 HEAD 2>/dev/null) \
            -X github.com/eventpipe/eventpipe/internal/cli.BuildDate=$(shell date -u +%Y-%m-%dT%H:%M:%SZ)

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/eventpipe

# The main job: the default pipeline over the sample events.
run: build
	./$(BIN) run -c pipeline.yaml --input testdata/events.jsonl

# The whole test suite: vet, race-enabled tests, and a brief run of every fuzz target.
test: vet race fuzz

vet:
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet $(PKGS)

race:
	$(GO) test -race -count=1 $(PKGS)

unit:
	$(GO) test -count=1 $(PKGS)

# Each fuzz target runs FUZZTIME executions (go test -fuzz takes one target at a time).
fuzz:
	@set -e; for t in $$($(GO) run ./internal/tools/fuzztargets); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$pkg $$name ($(FUZZTIME))"; \
		$(GO) test $$pkg -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME); \
	done

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

# eventpipe and Benthos (the MIT core of Redpanda Connect) side by side on
# the same input: a module of its own, so Benthos never enters the build.
bench-benthos:
	cd tools/benthoscompare && $(GO) run . -events 300000

fmt:
	gofmt -w .

# The built-in plugins: filter and sanitize compiled with standard Go for
# wasip1 (the native stages' own code), and the sanitize rules written in
# Rust (sanitize-rust.wasm: ~3x faster, no extra_patterns; needs Debian's
# rustc with libstd-rust-dev-wasm32, see .ci/run).
plugins:
	mkdir -p bin/plugins
	$(WASI_GO) -o bin/plugins/filter.wasm ./plugins/filter
	$(WASI_GO) -o bin/plugins/sanitize.wasm ./plugins/sanitize
	/usr/bin/rustc --target wasm32-unknown-unknown --crate-type cdylib -C opt-level=3 -C strip=symbols \
		-C target-feature=+simd128,+bulk-memory -C lto=fat -C codegen-units=1 \
		-o bin/plugins/sanitize-rust.wasm plugins/sanitize-rust/sanitize.rs

# Rebuild the committed conformance plugins from source. Needs clang + lld,
# Debian's rustc with libstd-rust-dev-wasm32, and npm (see .ci/run).
conformance:
	mkdir -p $(CONFORMANCE_OUT)
	clang --target=wasm32 -O2 -nostdlib -Wl,--no-entry -Wl,--strip-all -Wl,--export-dynamic \
		-o $(CONFORMANCE_OUT)/filter-c.wasm host/testdata/conformance/src/filter.c
	/usr/bin/rustc --target wasm32-unknown-unknown --crate-type cdylib -C opt-level=3 -C strip=symbols \
		-o $(CONFORMANCE_OUT)/filter-rust.wasm host/testdata/conformance/src/filter.rs
	cd sdk/assemblyscript && npm ci --no-audit --no-fund
	sdk/assemblyscript/node_modules/.bin/asc host/testdata/conformance/src/filter.ts \
		--outFile $(CONFORMANCE_OUT)/filter-as.wasm --optimizeLevel 3 --runtime stub --use abort=

# Rebuild the WAT modules (reference filter, hostile test plugins) into WAT_OUT.
wat:
	@set -e; for f in sdk/wat/*.wat host/testdata/plugins/*.wat; do \
		mkdir -p $(WAT_OUT)/$$(dirname $$f); wat2wasm $$f -o $(WAT_OUT)/$${f%.wat}.wasm; done

clean:
	rm -rf bin
