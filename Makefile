# Two commands matter on a fresh machine: `make demo` and `make test`.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.sourceDir=$(CURDIR)

.PHONY: all build demo test bench lint clean

all: build

build: bin/dora bin/libdora_node_api_c.a bin/libdora_node_api_c.so

# bin/dora is static: CGO_ENABLED=0; C and Python operators are reached
# through purego at run time.
bin/dora: FORCE
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/dora ./cmd/dora

# The C node API is Go code exported to C, so it is the one part built
# with cgo. The generated headers are dropped: abi/c/node_api.h is the API.
bin/libdora_node_api_c.a: FORCE
	CGO_ENABLED=1 $(GO) build -trimpath -buildmode=c-archive -o $@ ./apis/c/node
	rm -f bin/libdora_node_api_c.h

bin/libdora_node_api_c.so: FORCE
	CGO_ENABLED=1 $(GO) build -trimpath -buildmode=c-shared -o $@ ./apis/c/node
	rm -f bin/libdora_node_api_c.h

demo: build
	bin/dora build examples/go-dataflow/dataflow.yml
	bin/dora run examples/go-dataflow/dataflow.yml

test: lint build
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 20m ./...
	python3 -m pytest -q apis/python

bench: build
	$(GO) run ./examples/benchmark/baseline
	$(GO) run ./examples/benchmark/baseline -relay
	bin/dora build examples/benchmark/dataflow.yml
	BENCH_CSV=$(CURDIR)/out/bench.csv bin/dora run examples/benchmark/dataflow.yml
	$(GO) test -run '^$$' -bench . -benchmem -count 5 ./apis/go/node/ ./loaders/... ./internal/arrowconv/

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

clean:
	rm -rf bin out examples/*/build examples/*/out

FORCE:
