# eventpipe — see README.md. `make run` and `make test` are the two commands.
GO       ?= go
BIN      := bin/eventpipe
FUZZTIME ?= 5s
PKGS     := ./...

.PHONY: all build run test unit race fuzz bench lint vet fmt clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/eventpipe

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

# Each fuzz target runs for FUZZTIME (go test -fuzz takes one target at a time).
fuzz:
	@set -e; for t in $$($(GO) run ./internal/tools/fuzztargets); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$pkg $$name ($(FUZZTIME))"; \
		$(GO) test $$pkg -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME); \
	done

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

fmt:
	gofmt -w .

clean:
	rm -rf bin
