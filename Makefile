# webfarm — see README.md. Every target installs what it needs: Debian packages
# through hack/install-packages.sh, Go tools into bin/ from the module proxy.

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

BIN            := $(CURDIR)/bin
CONTROLLER_GEN_VERSION ?= v0.23.0
CONTROLLER_GEN := $(BIN)/controller-gen-$(CONTROLLER_GEN_VERSION)
GO_TEST_FLAGS  ?=

export PATH := $(BIN):$(PATH)

.PHONY: all
all: build

##@ Development

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate deepcopy code.
	$(CONTROLLER_GEN) object:headerFile=hack/boilerplate.go.txt paths="./api/..."

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Generate CRDs and RBAC under config/.
	$(CONTROLLER_GEN) rbac:roleName=webfarm-controller crd:generateEmbeddedObjectMeta=false \
		paths="./api/..." paths="./controllers/..." \
		output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac

.PHONY: check-generated
check-generated: generate manifests ## Fail if generated files are stale.
	@git diff --exit-code -- api config || { echo "generated files are stale: run 'make generate manifests' and commit" >&2; exit 1; }

.PHONY: fmt
fmt: ## Run gofmt.
	gofmt -w $$(git ls-files '*.go')

.PHONY: vet
vet: ## Run go vet and check gofmt.
	go vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); [ -z "$$out" ] || { echo "gofmt needed: $$out" >&2; exit 1; }

##@ Build

.PHONY: build
build: ## Build the controller and agent into bin/.
	go build -o $(BIN)/webfarm-controller ./cmd/webfarm-controller
	go build -o $(BIN)/webfarm-agent ./cmd/webfarm-agent

VERSION        ?= $(shell sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}/\1/p' charts/webfarm/Chart.yaml)
IMG_CONTROLLER ?= ghcr.io/webfarm/webfarm-controller:$(VERSION)
IMG_AGENT      ?= ghcr.io/webfarm/webfarm-agent:$(VERSION)
CONTAINER_TOOL ?= docker

.PHONY: docker-build
docker-build: ## Build both container images (IMG_CONTROLLER, IMG_AGENT; the chart's default names).
	$(CONTAINER_TOOL) build -f Dockerfile.controller -t $(IMG_CONTROLLER) .
	$(CONTAINER_TOOL) build -f Dockerfile.agent -t $(IMG_AGENT) .

.PHONY: docker-push
docker-push: ## Push both images.
	$(CONTAINER_TOOL) push $(IMG_CONTROLLER)
	$(CONTAINER_TOOL) push $(IMG_AGENT)

##@ Images and cluster

.PHONY: images
images: packages ## Both images as OCI archives in _output/images/ with no daemon (mmdebstrap, hack/ociimage): the same inputs give the same digests.
	IMG_CONTROLLER=$(IMG_CONTROLLER) IMG_AGENT=$(IMG_AGENT) hack/images.sh

.PHONY: cluster
cluster: export CONTROL_PLANE_NODES := 1
cluster: packages control-plane node-stack ## A real cluster on this machine (2 nodes in network namespaces, images imported), left running; prints its kubeconfig. `make cluster-down` ends it.
	hack/cluster.sh up

.PHONY: cluster-down
cluster-down: ## Tear the cluster of `make cluster` down and restore the host.
	hack/cluster.sh down

##@ Test

.PHONY: test
# One Kubernetes build serves every test: the full set (CONTROL_PLANE_NODES=1)
# is built at the first test that needs the control plane, and envtest, the
# testbed and the cluster all use it. The cluster runs last, once the tests
# that measure timings on the testbed are done.
test: export CONTROL_PLANE_NODES := 1
test: packages check-generated vet test-unit test-envtest test-node test-e2e test-faults test-faults-farm test-cluster ## Everything: unit, envtest, node, end-to-end tests, fault trials and the chart on a real cluster.

.PHONY: test-unit
test-unit: helm ## Unit tests (chart lint and templates included): need neither root nor a control plane.
	HELM="$$(hack/helm.sh)" go test $(GO_TEST_FLAGS) ./...

.PHONY: test-cluster
# Its control-plane prerequisite builds the full set at once, not the
# apiserver's set first and then the rest.
test-cluster: export CONTROL_PLANE_NODES := 1
test-cluster: packages control-plane node-stack helm ## helm install on a real cluster (2 nodes, real kubelets and containerd), the sample farm through its failover IP, upgrades of the agent and HAProxy under load, the owner's loss, helm uninstall; root.
	HELM="$$(hack/helm.sh)" KUBEBUILDER_ASSETS="$$(hack/control-plane.sh)" WEBFARM_CLUSTER=1 \
		go test $(GO_TEST_FLAGS) -count=1 -p 1 -timeout 40m -run '^TestCluster' -v ./test/cluster/

SOAK_SCHEDULES ?= 10000000
SOAK_FIRST ?= 1
.PHONY: soak
soak: ## The failover simulation over SOAK_SCHEDULES random schedules from seed SOAK_FIRST (ten million: about 1.6 CPU-hours at 1,700 a CPU-second; it stops at the first 20 failures).
	WEBFARM_SIM_SCHEDULES=$(SOAK_SCHEDULES) WEBFARM_SIM_FIRST=$(SOAK_FIRST) go test $(GO_TEST_FLAGS) -count=1 -timeout 0 -v -run 'TestRandomSchedules' ./internal/failoversim/

.PHONY: test-envtest
test-envtest: control-plane helm ## Tests against a real kube-apiserver and etcd (chart tests included).
	KUBEBUILDER_ASSETS="$$(hack/control-plane.sh)" HELM="$$(hack/helm.sh)" WEBFARM_ENVTEST=1 \
		go test $(GO_TEST_FLAGS) -count=1 -run 'Envtest' ./...

.PHONY: test-node
test-node: packages ## Node tests: real iptables, netlink and HAProxy in network namespaces (root).
	WEBFARM_NODE_TESTS=1 go test $(GO_TEST_FLAGS) -count=1 -p 1 -run 'Node' ./agent/...

.PHONY: test-e2e
test-e2e: packages control-plane ## End-to-end: the local testbed (3 fronts, a client, a real control plane), root.
	KUBEBUILDER_ASSETS="$$(hack/control-plane.sh)" WEBFARM_E2E=1 \
		go test $(GO_TEST_FLAGS) -count=1 -p 1 -timeout 30m -run 'E2E' ./test/...

.PHONY: bench-sync
bench-sync: packages ## Uploads: webfarm's Syncers beside lsyncd on the same three namespaces, in one run: a single change, 1 KB-1 MB files at 20/s (p50, p99), a burst of 10,000 files, idle CPU; printed side by side (root, a few minutes).
	WEBFARM_NODE_TESTS=1 WEBFARM_BENCH_SYNC=1 go test $(GO_TEST_FLAGS) -count=1 -timeout 30m -run '^TestNodeSyncBench$$' -v ./agent/uploads/

.PHONY: test-faults
test-faults: packages control-plane ## Fault trials of the VIP owner on the testbed under load (its agent SIGKILLed/SIGSTOPped, its link down, its HAProxy dead, its API black-holed, it mute): zero instants of two answerers, root (about 2.5 min).
	KUBEBUILDER_ASSETS="$$(hack/control-plane.sh)" WEBFARM_E2E=1 \
		go test $(GO_TEST_FLAGS) -count=1 -p 1 -timeout 20m -run '^TestFaultTrials$$' -v ./test/e2e/

.PHONY: test-faults-farm
test-faults-farm: packages control-plane ## Fault trials of the farm on the testbed under load (a two-front partition, a deadtime cut while the owner is isolated, the FailoverIP edited or recreated while held): zero instants of two answerers, root (about 2 min: two testbeds).
	KUBEBUILDER_ASSETS="$$(hack/control-plane.sh)" WEBFARM_E2E=1 \
		go test $(GO_TEST_FLAGS) -count=1 -p 1 -timeout 20m -run '^TestFaultTrials(TwoFronts|Edits)$$' -v ./test/e2e/

.PHONY: bench
bench: packages control-plane ## Benchmarks; they print their figures.
	KUBEBUILDER_ASSETS="$$(hack/control-plane.sh)" WEBFARM_ENVTEST=1 WEBFARM_NODE_TESTS=1 WEBFARM_E2E=1 \
		go test -run '^$$' -bench . -benchtime 1x -count=1 -p 1 -timeout 60m ./...

TRIALS ?= 10
.PHONY: bench-failover
bench-failover: packages control-plane ## Failover gaps of keepalived (VRRP) and webfarm side by side on the testbed, the fronts' VIP and the database's address (write gap, acknowledged writes lost); tables in _output/ (the database rows: about 5 min at TRIALS=5).
	KUBEBUILDER_ASSETS="$$(hack/control-plane.sh)" go run ./cmd/webfarm-testbed bench-failover --trials $(TRIALS) --out _output/bench-failover.txt

SOAK_DURATION ?= 30m
.PHONY: soak-failover
soak-failover: packages control-plane ## No false fence: the farm at its fastest settings for SOAK_DURATION (30m) under load with 2 CPU hogs, keepalived at advert_int 0.1 beside it; fails on any owner change, fence or two answerers.
	KUBEBUILDER_ASSETS="$$(hack/control-plane.sh)" go run ./cmd/webfarm-testbed soak-failover --duration $(SOAK_DURATION) --out _output/soak-failover.txt

##@ Demo

KEEP ?=
.PHONY: demo
demo: packages control-plane ## Run the whole farm on this machine and narrate its eight scenarios, the database failover and uploads last (KEEP=1 leaves it running).
	KUBEBUILDER_ASSETS="$$(hack/control-plane.sh)" go run ./cmd/webfarm-testbed demo $(if $(KEEP),--keep)

##@ Tools

.PHONY: packages
packages: ## Install the Debian packages the tests use (haproxy, iptables, iproute2, ...).
	hack/install-packages.sh

.PHONY: helm
helm: ## Build helm from the module proxy into bin/ (cached).
	hack/helm.sh >/dev/null

.PHONY: control-plane
control-plane: ## Build kube-apiserver, kubectl, kube-controller-manager, kube-scheduler, kubelet, kube-proxy and etcd from the module proxy (cached).
	hack/control-plane.sh >/dev/null

.PHONY: node-stack
node-stack: ## Build containerd v2, ctr, its runc shim and the CNI plugins from the module proxy (cached).
	hack/node-stack.sh >/dev/null

$(CONTROLLER_GEN):
	GOBIN=$(BIN)/.tmp go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_GEN_VERSION)
	mv $(BIN)/.tmp/controller-gen $@ && rmdir $(BIN)/.tmp

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*?##/ { printf "  %-16s %s\n", $$1, $$2 } /^##@/ { printf "\n%s\n", substr($$0, 5) }' $(MAKEFILE_LIST)
