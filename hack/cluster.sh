#!/usr/bin/env bash
# A real Kubernetes cluster on this one machine, for `make cluster` and
# `make test-cluster`: etcd, kube-apiserver, kube-controller-manager and
# kube-scheduler in one network namespace (wfc-cp), and NODES nodes, each a
# network namespace (wfc-node1, ...) with its own containerd, kubelet and
# kube-proxy, their own directories, sockets and cgroup parent. A bridge
# namespace (wfc-net) links them, a client namespace (wfc-client) and the host
# (link wfc-host, 10.98.0.1) for kubectl. No namespace has a default route:
# nothing in the cluster can reach beyond it, and no image is ever pulled.
#
#   hack/cluster.sh up     bring it up; prints the kubeconfig's path
#                          (WFC_IMAGES=DIR: import DIR/*.tar, built already)
#   hack/cluster.sh down   tear everything down and restore the host
#
# What the kubelet and the CNI plugins change outside the cluster's directory
# is recorded at `up` and restored at `down`: three sysctls, and
# /var/lib/kubelet/device-plugins, /var/lib/cni and /run/containerd when they
# did not exist before.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
NODES=${NODES:-2}
DIR=${WFC_DIR:-/var/tmp/wfc-cluster}
K8S_VERSION=${K8S_VERSION:-v1.37.2}
PAUSE_IMAGE=wfc.local/pause:3.10
NET=10.98.0
CP_ADDR=$NET.2
HOST_ADDR=$NET.1
CLIENT_ADDR=$NET.100
POD_CIDR=10.244.0.0/16
SERVICE_CIDR=10.96.0.0/16
SERVICE_IP=10.96.0.1
host_dirs=(/var/lib/kubelet/device-plugins /var/lib/cni /run/containerd)
host_sysctls=(vm.overcommit_memory kernel.panic kernel.panic_on_oops)

log() { echo "cluster: $*" >&2; }
node_addr() { echo "$NET.$((10 + $1))"; }

# in runs a command in a namespace with nsenter, which, unlike `ip netns
# exec`, leaves /sys as it is: the kubelet finds its cgroup mounts there.
in_ns() {
  local ns=$1
  shift
  nsenter --net="/run/netns/$ns" -- "$@"
}

# start runs a daemon in a namespace, in its own session, logging to
# $DIR/log/<name>.log, and records its pid for `down`.
start() {
  local ns=$1 name=$2
  shift 2
  mkdir -p "$DIR/log" "$DIR/pid"
  setsid nsenter --net="/run/netns/$ns" -- "$@" >"$DIR/log/$name.log" 2>&1 </dev/null &
  echo $! >"$DIR/pid/$name"
}

# wait_for polls a command until it succeeds, for at most $1 seconds.
wait_for() {
  local secs=$1 what=$2
  shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
      log "timed out after ${secs}s waiting for $what"
      return 1
    fi
    sleep 0.5
  done
}

# --- the host: what `up` changes and `down` restores -----------------------

record_host() {
  mkdir -p "$DIR"
  [ -e "$DIR/host.saved" ] && return
  {
    for s in "${host_sysctls[@]}"; do echo "sysctl $s $(sysctl -n "$s")"; done
    for d in "${host_dirs[@]}"; do [ -e "$d" ] || echo "created $d"; done
  } >"$DIR/host.saved.tmp"
  mv "$DIR/host.saved.tmp" "$DIR/host.saved"
}

restore_host() {
  [ -e "$DIR/host.saved" ] || return 0
  local kind a b
  while read -r kind a b; do
    case $kind in
    sysctl) sysctl -qw "$a=$b" ;;
    created) rm -rf "$a" ;;
    esac
  done <"$DIR/host.saved"
  rm -f "$DIR/host.saved"
}

# --- network -------------------------------------------------------------

# plug links namespace ns to the bridge with address addr on its eth0.
plug() {
  local ns=$1 addr=$2 port=wfc-${1#wfc-}
  ip link add "$port" type veth peer name eth0 netns "$ns"
  ip link set "$port" netns wfc-net
  in_ns wfc-net ip link set "$port" master br0 up
  in_ns "$ns" ip addr add "$addr/24" dev eth0
  in_ns "$ns" ip link set eth0 up
  in_ns "$ns" ip link set lo up
}

network_up() {
  ip netns add wfc-net
  in_ns wfc-net ip link add br0 type bridge
  in_ns wfc-net ip link set br0 up
  in_ns wfc-net ip link set lo up
  ip netns add wfc-cp
  plug wfc-cp "$CP_ADDR"
  ip netns add wfc-client
  plug wfc-client "$CLIENT_ADDR"
  local i
  for i in $(seq 1 "$NODES"); do
    ip netns add "wfc-node$i"
    plug "wfc-node$i" "$(node_addr "$i")"
    in_ns "wfc-node$i" sysctl -qw net.ipv4.ip_forward=1
    # A node's own connections to a Service (a host-network pod's to the API
    # server) need a route before kube-proxy's DNAT rewrites them; without a
    # default route, this one.
    in_ns "wfc-node$i" ip route add "$SERVICE_CIDR" dev eth0
  done
  # The host's own link, for kubectl and helm: the route it adds reaches
  # these namespaces only.
  ip link add wfc-host type veth peer name wfc-hostp netns wfc-net
  in_ns wfc-net ip link set wfc-hostp master br0 up
  ip addr add "$HOST_ADDR/24" dev wfc-host
  ip link set wfc-host up
}

# --- certificates ----------------------------------------------------------

# cert issues a client or serving certificate signed by the cluster's CA.
cert() {
  local name=$1 subj=$2 sans=${3:-}
  local p=$DIR/pki/$name
  openssl genrsa -out "$p.key" 2048 2>/dev/null
  openssl req -new -key "$p.key" -subj "$subj" -out "$p.csr" 2>/dev/null
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=clientAuth,serverAuth"
    [ -n "$sans" ] && echo "subjectAltName=$sans"
  } >"$p.ext"
  openssl x509 -req -in "$p.csr" -CA "$DIR/pki/ca.crt" -CAkey "$DIR/pki/ca.key" -CAcreateserial \
    -days 30 -extfile "$p.ext" -out "$p.crt" 2>/dev/null
}

# kubeconfig writes a kubeconfig for the named certificate.
kubeconfig() {
  local name=$1 server=${2:-https://$CP_ADDR:6443}
  cat >"$DIR/$name.kubeconfig" <<YAML
apiVersion: v1
kind: Config
clusters:
- name: wfc
  cluster: {server: "$server", certificate-authority: "$DIR/pki/ca.crt"}
users:
- name: $name
  user: {client-certificate: "$DIR/pki/$name.crt", client-key: "$DIR/pki/$name.key"}
contexts:
- name: wfc
  context: {cluster: wfc, user: $name}
current-context: wfc
YAML
}

pki_up() {
  mkdir -p "$DIR/pki"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$DIR/pki/ca.key" -out "$DIR/pki/ca.crt" \
    -days 30 -subj "/CN=wfc-ca" 2>/dev/null
  openssl genrsa -out "$DIR/pki/sa.key" 2048 2>/dev/null
  openssl rsa -in "$DIR/pki/sa.key" -pubout -out "$DIR/pki/sa.pub" 2>/dev/null
  cert apiserver "/CN=kube-apiserver" \
    "IP:$CP_ADDR,IP:$SERVICE_IP,IP:127.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  cert admin "/O=system:masters/CN=wfc-admin"
  cert kube-controller-manager "/CN=system:kube-controller-manager"
  cert kube-scheduler "/CN=system:kube-scheduler"
  cert kube-proxy "/CN=system:kube-proxy"
  local name
  for name in admin kube-controller-manager kube-scheduler kube-proxy; do kubeconfig "$name"; done
  for i in $(seq 1 "$NODES"); do
    cert "node$i" "/O=system:nodes/CN=system:node:wfc-node$i"
    kubeconfig "node$i"
  done
}

# --- control plane ---------------------------------------------------------

control_plane_up() {
  local bin=$1
  mkdir -p "$DIR/etcd"
  start wfc-cp etcd "$bin/etcd" --data-dir "$DIR/etcd" \
    --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
    --listen-peer-urls http://127.0.0.1:2380 --log-level warn
  wait_for 60 etcd in_ns wfc-cp curl -sf http://127.0.0.1:2379/health
  start wfc-cp kube-apiserver "$bin/kube-apiserver" \
    --etcd-servers http://127.0.0.1:2379 --bind-address 0.0.0.0 --advertise-address "$CP_ADDR" \
    --secure-port 6443 --tls-cert-file "$DIR/pki/apiserver.crt" --tls-private-key-file "$DIR/pki/apiserver.key" \
    --client-ca-file "$DIR/pki/ca.crt" --service-cluster-ip-range "$SERVICE_CIDR" \
    --service-account-issuer https://kubernetes.default.svc --service-account-key-file "$DIR/pki/sa.pub" \
    --service-account-signing-key-file "$DIR/pki/sa.key" --authorization-mode Node,RBAC \
    --enable-admission-plugins NodeRestriction --allow-privileged=true \
    --kubelet-client-certificate "$DIR/pki/admin.crt" --kubelet-client-key "$DIR/pki/admin.key" \
    --kubelet-preferred-address-types InternalIP
  wait_for 120 kube-apiserver "$bin/kubectl" --kubeconfig "$DIR/admin.kubeconfig" get --raw /readyz
  start wfc-cp kube-controller-manager "$bin/kube-controller-manager" \
    --kubeconfig "$DIR/kube-controller-manager.kubeconfig" --bind-address 127.0.0.1 \
    --allocate-node-cidrs --cluster-cidr "$POD_CIDR" --node-cidr-mask-size 24 \
    --service-cluster-ip-range "$SERVICE_CIDR" --service-account-private-key-file "$DIR/pki/sa.key" \
    --root-ca-file "$DIR/pki/ca.crt" --cluster-signing-cert-file "$DIR/pki/ca.crt" \
    --cluster-signing-key-file "$DIR/pki/ca.key" --use-service-account-credentials \
    --leader-elect=false
  start wfc-cp kube-scheduler "$bin/kube-scheduler" \
    --kubeconfig "$DIR/kube-scheduler.kubeconfig" --bind-address 127.0.0.1 --leader-elect=false
}

# --- nodes -----------------------------------------------------------------

# cgroup_parent creates the node's cgroup parent in every v1 hierarchy; the
# cpuset one needs its CPUs and memory nodes before anything may join it.
cgroup_parent() {
  local name=$1 h
  for h in /sys/fs/cgroup/*/; do
    [ -e "$h/cgroup.procs" ] || continue
    mkdir -p "$h/$name"
    if [ -e "$h/cpuset.cpus" ]; then
      cat "$h/cpuset.cpus" >"$h/$name/cpuset.cpus"
      cat "$h/cpuset.mems" >"$h/$name/cpuset.mems"
    fi
  done
}

containerd_config() {
  local n=$1 stack=$2 d=$DIR/node$1
  cat >"$d/containerd.toml" <<TOML
version = 3
root = "$d/containerd/root"
state = "$d/containerd/state"
[grpc]
  address = "$d/containerd.sock"
[ttrpc]
  address = "$d/containerd.sock.ttrpc"
[plugins.'io.containerd.grpc.v1.cri']
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
[plugins.'io.containerd.cri.v1.images']
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "$PAUSE_IMAGE"
[plugins.'io.containerd.cri.v1.runtime']
  # Without CAP_SYS_RESOURCE (as in this VM), runc may not lower a
  # container's oom_score_adj below its own.
  restrict_oom_score_adj = true
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["$stack/cni"]
    conf_dir = "$d/cni"
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = "$(command -v runc)"
        SystemdCgroup = false
TOML
}

kubelet_config() {
  local n=$1 d=$DIR/node$1
  : >"$d/resolv.conf"
  cat >"$d/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This machine has cgroup v1 only, and swap.
failCgroupV1: false
cgroupDriver: cgroupfs
failSwapOn: false
cgroupRoot: /wfc-node$n
containerRuntimeEndpoint: unix://$d/containerd.sock
address: $(node_addr "$n")
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
podLogsDir: $d/pod-logs
# No DNS to the outside: pods get an empty resolv.conf.
resolvConf: $d/resolv.conf
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $DIR/pki/ca.crt}
authorization: {mode: AlwaysAllow}
# A shared machine's disk and memory are others' too: evict nothing for them.
evictionHard: {memory.available: "1Mi", nodefs.available: "1%", imagefs.available: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
YAML
}

# cni_config writes the node's bridge network over the podCIDR the
# controller-manager gave it, and routes to the other nodes' podCIDRs.
cni_config() {
  local n=$1 cidr=$2 d=$DIR/node$1
  mkdir -p "$d/cni" "$d/cni-data"
  cat >"$d/cni/10-wfc.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "wfc",
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true,
     "ipam": {"type": "host-local", "dataDir": "$d/cni-data", "ranges": [[{"subnet": "$cidr"}]],
              "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "loopback"}
  ]
}
JSON
}

node_cidr() {
  "$1/kubectl" --kubeconfig "$DIR/admin.kubeconfig" get node "wfc-node$2" -o jsonpath='{.spec.podCIDR}'
}

# has_cidr succeeds once the node has its podCIDR (wait_for asks again each time).
has_cidr() { [ -n "$(node_cidr "$1" "$2")" ]; }

node_up() {
  local n=$1 bin=$2 stack=$3 d=$DIR/node$1
  mkdir -p "$d/containerd" "$d/kubelet" "$d/pod-logs" "$d/cni"
  cgroup_parent "wfc-node$n"
  containerd_config "$n" "$stack"
  kubelet_config "$n"
  PATH=$stack:$PATH start "wfc-node$n" "containerd-node$n" "$stack/containerd" --config "$d/containerd.toml"
  wait_for 60 "containerd of node $n" "$stack/ctr" --address "$d/containerd.sock" version
  for img in "$DIR/images/"*.tar; do
    "$stack/ctr" --address "$d/containerd.sock" -n k8s.io images import "$img" >/dev/null
  done
  start "wfc-node$n" "kubelet-node$n" "$bin/kubelet" --config "$d/kubelet.yaml" \
    --kubeconfig "$DIR/node$n.kubeconfig" --root-dir "$d/kubelet" --cert-dir "$d/kubelet/pki" \
    --hostname-override "wfc-node$n" --node-ip "$(node_addr "$n")" \
    --node-labels webfarm.io/front=true
  start "wfc-node$n" "kube-proxy-node$n" "$bin/kube-proxy" --kubeconfig "$DIR/kube-proxy.kubeconfig" \
    --hostname-override "wfc-node$n" --cluster-cidr "$POD_CIDR" --proxy-mode iptables \
    --conntrack-max-per-core 0 --conntrack-tcp-timeout-established 0 --conntrack-tcp-timeout-close-wait 0 \
    --metrics-bind-address 127.0.0.1:10249 --healthz-bind-address 127.0.0.1:10256
}

# pod_routes gives every node a CNI config and a route to each other node's
# pods, once the controller-manager has assigned the podCIDRs.
pod_routes() {
  local bin=$1 i j cidr
  for i in $(seq 1 "$NODES"); do
    wait_for 120 "the podCIDR of node $i" has_cidr "$bin" "$i"
  done
  for i in $(seq 1 "$NODES"); do
    cni_config "$i" "$(node_cidr "$bin" "$i")"
    for j in $(seq 1 "$NODES"); do
      [ "$i" = "$j" ] || in_ns "wfc-node$i" ip route replace "$(node_cidr "$bin" "$j")" via "$(node_addr "$j")"
    done
  done
}

# images builds webfarm's two images, the pause image (from the pause.c of
# the Kubernetes release) and the sample farm's web server into $DIR/images.
images() {
  local work=$DIR/images k8s_dir
  mkdir -p "$work"
  OUT=$work IMG_CONTROLLER=$IMG_CONTROLLER IMG_AGENT=$IMG_AGENT "$root/hack/images.sh" >&2
  go build -o "$work/ociimage" "$root/hack/ociimage"
  k8s_dir=$(go mod download -json "k8s.io/kubernetes@${K8S_VERSION}" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  gcc -Os -static -DVERSION=wfc -o "$work/pause" "$k8s_dir/build/pause/linux/pause.c"
  "$work/ociimage" --name "$PAUSE_IMAGE" --out "$work/pause.tar" \
    --file "$work/pause:/pause:0755" --entrypoint /pause --user 65535:65535 >/dev/null
  (cd "$root" && CGO_ENABLED=0 go build -trimpath -o "$work/webserver" ./test/cluster/webserver)
  "$work/ociimage" --name "$IMG_WEBSERVER" --out "$work/webserver.tar" \
    --file "$work/webserver:/webserver:0755" --entrypoint /webserver --user 65532:65532 >/dev/null
  rm -f "$work/pause" "$work/webserver" "$work/ociimage"
}

up() {
  [ -e /run/netns/wfc-net ] && { log "a cluster is up already (hack/cluster.sh down first)"; exit 1; }
  local bin stack
  bin=$(CONTROL_PLANE_NODES=1 "$root/hack/control-plane.sh")
  stack=$("$root/hack/node-stack.sh")
  record_host
  if [ -n "${WFC_IMAGES:-}" ]; then
    # Archives made already (make images, and the pause and web server ones).
    mkdir -p "$DIR/images" && cp "$WFC_IMAGES"/*.tar "$DIR/images/"
  else
    images
  fi
  network_up
  pki_up
  control_plane_up "$bin"
  for i in $(seq 1 "$NODES"); do node_up "$i" "$bin" "$stack"; done
  pod_routes "$bin"
  for i in $(seq 1 "$NODES"); do
    wait_for 180 "node $i Ready" "$bin/kubectl" --kubeconfig "$DIR/admin.kubeconfig" wait --timeout 1s --for condition=Ready "node/wfc-node$i"
  done
  kubeconfig admin "https://$CP_ADDR:6443"
  log "up: $NODES nodes; kubectl, helm: KUBECONFIG=$DIR/admin.kubeconfig (binaries in $bin)"
  echo "$DIR/admin.kubeconfig"
}

# --- down ------------------------------------------------------------------

# cluster_pids lists every process of the cluster: those in its namespaces
# and those in its nodes' cgroups (containers).
cluster_pids() {
  local ns h
  for ns in wfc-cp wfc-client wfc-net $(node_names); do
    [ -e "/run/netns/$ns" ] && ip netns pids "$ns" 2>/dev/null
  done
  for h in /sys/fs/cgroup/*/wfc-node*/; do
    [ -d "$h" ] && find "$h" -name cgroup.procs -exec cat {} + 2>/dev/null
  done
  true
}

node_names() {
  local p
  for p in /run/netns/wfc-node*; do [ -e "$p" ] && basename "$p"; done
  true
}

# pod_netns lists the pods' namespaces (/run/netns/cni-*) that belong to this
# cluster's processes, by inode: other runtimes' are left alone.
pod_netns() {
  local pids=$1 ino p
  declare -A ours
  for p in $pids; do
    ino=$(stat -L -c %i "/proc/$p/ns/net" 2>/dev/null) && ours[$ino]=1
  done
  for p in /run/netns/cni-*; do
    [ -e "$p" ] || continue
    ino=$(stat -L -c %i "$p" 2>/dev/null) || continue
    [ -n "${ours[$ino]:-}" ] && basename "$p"
  done
  true
}

# ancestors lists this script's pid and those of every process above it:
# the test or make that runs `down` is never the cluster's, whatever a
# namespace or cgroup listing says.
ancestors() {
  local p=$$
  while [ "$p" -gt 1 ]; do
    echo "$p"
    p=$(awk '/^PPid:/ {print $2}' "/proc/$p/status" 2>/dev/null) || break
    [ -n "$p" ] || break
  done
}

# kill_pid SIGKILLs one of the cluster's processes: never pid 0 or 1 (kill
# would read them as this process group, or every process) nor one of
# this script's ancestors, which it logs instead.
kill_pid() {
  local pid=$1 spared=$2
  case $pid in '' | *[!0-9]* | 0 | 1) return ;; esac
  if grep -qx "$pid" <<<"$spared"; then
    log "spared pid $pid ($(cat "/proc/$pid/comm" 2>/dev/null)), listed as the cluster's but running this teardown: $(readlink "/proc/$pid/ns/net"), $(tr '\n' ' ' <"/proc/$pid/cgroup" 2>/dev/null)"
    spared_any=1
    return
  fi
  kill -9 "$pid" 2>/dev/null || true
}

down() {
  local pids netns p spared
  pids=$(cluster_pids | sort -u)
  netns=$(pod_netns "$pids")
  spared=$(ancestors)
  # kill -9 by pid, each one ours: in our namespaces or our cgroups.
  for p in $pids; do kill_pid "$p" "$spared"; done
  for p in "$DIR"/pid/*; do
    [ -e "$p" ] || continue
    kill_pid "$(cat "$p")" "$spared"
    rm -f "$p"
  done
  wait_for 30 "the cluster's processes to end" test -z "$(cluster_pids)" || true
  # The mounts of containers and pod volumes, deepest first.
  findmnt -rn -o TARGET | grep -E "^$DIR/" | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  for p in $netns; do ip netns delete "$p" 2>/dev/null || true; done
  ip link del wfc-host 2>/dev/null || true
  for p in wfc-client wfc-cp $(node_names) wfc-net; do ip netns delete "$p" 2>/dev/null || true; done
  # cgroup directories go deepest first, once empty.
  for p in /sys/fs/cgroup/*/wfc-node*; do
    [ -d "$p" ] && find "$p" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
  restore_host
  rm -rf "$DIR"
  log "down"
  # A process that runs the teardown was listed as the cluster's: down did
  # its work, but what put it there is a defect to find.
  [ -z "${spared_any:-}" ]
}

IMG_CONTROLLER=${IMG_CONTROLLER:-ghcr.io/webfarm/webfarm-controller:dev}
IMG_AGENT=${IMG_AGENT:-ghcr.io/webfarm/webfarm-agent:dev}
IMG_WEBSERVER=${IMG_WEBSERVER:-wfc.local/webserver:dev}
case ${1:-} in
up) up ;;
down) down ;;
*) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
