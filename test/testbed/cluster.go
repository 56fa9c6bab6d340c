package testbed

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/webfarm/webfarm/internal/testenv"
)

// The objects the testbed creates besides the samples.
const (
	// OperatorNamespace holds the agents' Leases and the peer Secret.
	OperatorNamespace = "webfarm-system"
	// SamplesNamespace is where config/samples are applied.
	SamplesNamespace = "default"
	// PeerSecretName and PeerSecretKey hold the agents' shared heartbeat key.
	PeerSecretName = "webfarm-peer-key"
	PeerSecretKey  = "authkey"
	// FrontLabel selects the fronts (the samples' WebFarm frontSelector).
	FrontLabel = "webfarm.io/front"
)

// createNode creates the Node object of a front, labelled as a front, with
// its address in status (through the status subresource, as a kubelet does).
func createNode(ctx context.Context, c client.Client, name, address string) error {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{
		Name:   name,
		Labels: map[string]string{FrontLabel: "true", corev1.LabelHostname: name},
	}}
	if err := c.Create(ctx, node); err != nil {
		return fmt.Errorf("creating node %s: %w", name, err)
	}
	node.Status = corev1.NodeStatus{
		Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: address},
			{Type: corev1.NodeHostName, Address: name},
		},
		Conditions: []corev1.NodeCondition{{
			Type: corev1.NodeReady, Status: corev1.ConditionTrue,
			Reason: "WebfarmTestbed", Message: "network namespace " + FrontPrefix + name[len("front"):],
			LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now(),
		}},
	}
	if err := c.Status().Update(ctx, node); err != nil {
		return fmt.Errorf("setting status of node %s: %w", name, err)
	}
	return nil
}

// createPeerSecret creates the operator namespace and the random key the
// agents authenticate their heartbeats with.
func createPeerSecret(ctx context.Context, c client.Client) error {
	nsObj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: OperatorNamespace}}
	if err := c.Create(ctx, nsObj); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s: %w", OperatorNamespace, err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: PeerSecretName, Namespace: OperatorNamespace},
		Data:       map[string][]byte{PeerSecretKey: []byte(hex.EncodeToString(key))},
	}
	if err := c.Create(ctx, secret); err != nil {
		return fmt.Errorf("creating secret %s/%s: %w", OperatorNamespace, PeerSecretName, err)
	}
	return nil
}

// renderSamples renders config/samples with `kubectl kustomize`, as
// `kubectl apply -k` would, and returns the manifests with the FailoverIP
// address replaced by vip: the sample's documentation address is reachable
// nowhere, the testbed's VIP is on its bridge. The Sites are served from
// document roots in the testbed's directory tbDir.
func renderSamples(kubectl func(...string) (string, error), vip, tbDir string) ([]byte, error) {
	dir := filepath.Join(testenv.RepoRoot(), "config", "samples")
	rendered, err := kubectl("kustomize", dir)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	decoder := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader([]byte(rendered)), 4096)
	patched := 0
	for {
		var obj unstructured.Unstructured
		if err := decoder.Decode(&obj.Object); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("decoding %s: %w", dir, err)
		}
		if obj.Object == nil {
			continue
		}
		if obj.GetKind() == "FailoverIP" {
			if err := unstructured.SetNestedField(obj.Object, vip, "spec", "address"); err != nil {
				return nil, fmt.Errorf("setting spec.address of FailoverIP %s: %w", obj.GetName(), err)
			}
			patched++
		}
		if obj.GetKind() == "Site" {
			if err := serveSiteFromTestbed(&obj, tbDir); err != nil {
				return nil, err
			}
		}
		doc, err := yaml.Marshal(obj.Object)
		if err != nil {
			return nil, err
		}
		out.WriteString("---\n")
		out.Write(doc)
	}
	if patched == 0 {
		return nil, fmt.Errorf("%s: no FailoverIP to point at %s", dir, vip)
	}
	return out.Bytes(), nil
}

// applySamples applies the rendered samples with kubectl, into
// SamplesNamespace, and keeps the manifests next to the testbed's files.
func applySamples(kubectl func(...string) (string, error), vip, dir string) (string, error) {
	manifests, err := renderSamples(kubectl, vip, dir)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "samples.yaml")
	if err := os.WriteFile(path, manifests, 0o644); err != nil {
		return "", err
	}
	return kubectl("apply", "--namespace", SamplesNamespace, "-f", path)
}
