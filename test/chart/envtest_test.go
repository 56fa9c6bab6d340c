package chart

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/webfarm/webfarm/internal/testenv"
)

// One control plane serves every envtest test of the package: it starts with
// the first and stops in TestMain.
var shared struct {
	once sync.Once
	env  *envtest.Environment
	cfg  *rest.Config
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.env != nil {
		if err := shared.env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the control plane:", err)
		}
	}
	os.Exit(code)
}

// controlPlane returns the admin config and client of a real kube-apiserver
// with the chart's CRDs installed — from charts/webfarm/crds, as Helm
// installs them — and the ServiceMonitor stand-in. It skips t unless envtest
// tests are enabled.
func controlPlane(t *testing.T) (*rest.Config, client.Client) {
	t.Helper()
	testenv.Skip(t)
	shared.once.Do(func() {
		shared.env = &envtest.Environment{
			CRDDirectoryPaths: []string{
				filepath.Join(chartDir, "crds"),
				filepath.Join(repoRoot, "test", "chart", "testdata", "crds"),
			},
			ErrorIfCRDPathMissing: true,
		}
		shared.cfg, shared.err = shared.env.Start()
	})
	if shared.err != nil {
		t.Fatalf("starting the control plane: %v", shared.err)
	}
	c, err := client.New(shared.cfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	return shared.cfg, c
}

// ensureNamespaces creates namespaces that do not exist yet: a dry run
// cannot create a namespace for the objects that follow it.
func ensureNamespaces(t *testing.T, c client.Client, names ...string) {
	t.Helper()
	for _, n := range names {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n}}
		if err := c.Create(context.Background(), ns); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("creating namespace %s: %v", n, err)
		}
	}
}

// apply server-side applies every object, as `helm install` or `kubectl
// apply --server-side` would, and returns one error per refused object.
func apply(ctx context.Context, c client.Client, objs []*unstructured.Unstructured, opts ...client.ApplyOption) error {
	opts = append(opts, client.FieldOwner("webfarm-chart-test"), client.ForceOwnership)
	var errs []error
	for _, o := range objs {
		if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(o), opts...); err != nil {
			errs = append(errs, fmt.Errorf("%s %s/%s: %w", o.GetKind(), o.GetNamespace(), o.GetName(), err))
		}
	}
	return errors.Join(errs...)
}

func TestEnvtestChartAccepted(t *testing.T) {
	_, c := controlPlane(t)
	ensureNamespaces(t, c, namespace, "shop", "blog")
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"default values", nil},
		{"custom values", []string{"--values", customValues}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs := mustHelmTemplate(t, tc.args...)
			if err := apply(context.Background(), c, objs, client.DryRunAll); err != nil {
				t.Fatalf("the API server refused the chart:\n%v", err)
			}
			t.Logf("%d objects accepted (server-side dry run)", len(objs))
		})
	}
}

func TestEnvtestKustomizeAccepted(t *testing.T) {
	_, c := controlPlane(t)
	objs := kustomizeBuild(t)
	ensureNamespaces(t, c, namespace)
	// kubectl itself, as the user runs it: it also knows what kustomize
	// does not, e.g. that admission policies take no namespace.
	stdout, stderr, err := shared.env.ControlPlane.KubeCtl().Run(
		"apply", "--server-side", "--dry-run=server", "-k", filepath.Join(repoRoot, "config", "default"))
	if err != nil {
		errText, _ := io.ReadAll(stderr)
		t.Fatalf("kubectl apply -k config/default: %v\n%s", err, errText)
	}
	out, _ := io.ReadAll(stdout)
	if applied := strings.Count(string(out), "serverside-applied (server dry run)"); applied != len(objs) {
		t.Fatalf("kubectl applied %d of the %d objects of config/default:\n%s", applied, len(objs), out)
	}
	t.Logf("%d objects accepted (server-side dry run)", len(objs))
}
