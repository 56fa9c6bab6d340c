// Package testenv starts a real control plane — kube-apiserver and etcd built by
// hack/control-plane.sh — with the webfarm CRDs installed, for tests.
//
// Tests that use it are named TestEnvtest… and run only when WEBFARM_ENVTEST=1
// (as `make test-envtest` sets), so that `make test-unit` needs no control plane.
package testenv

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// EnabledVar is the environment variable that enables envtest tests.
const EnabledVar = "WEBFARM_ENVTEST"

// Env is a running control plane.
type Env struct {
	Config *rest.Config
	Client client.Client
	Scheme *runtime.Scheme
	env    *envtest.Environment
}

// Skip skips t unless envtest tests are enabled.
func Skip(t testing.TB) {
	t.Helper()
	if os.Getenv(EnabledVar) != "1" {
		t.Skipf("envtest test: set %s=1 and KUBEBUILDER_ASSETS (make test-envtest)", EnabledVar)
	}
}

// Scheme returns a scheme with the built-in kinds and webfarm's.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := webfarmv1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}

// Start starts a control plane with the CRDs of config/crd/bases installed and
// stops it when t ends. It skips t unless envtest tests are enabled.
func Start(t testing.TB) *Env {
	t.Helper()
	Skip(t)
	env, err := StartEnv()
	if err != nil {
		t.Fatalf("starting the control plane: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stopping the control plane: %v", err)
		}
	})
	return env
}

// StartEnv starts a control plane outside a test (TestMain, benchmarks, the
// testbed). The caller stops it.
func StartEnv() (*Env, error) {
	scheme := Scheme()
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(RepoRoot(), "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		Scheme:                scheme,
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		_ = env.Stop()
		return nil, err
	}
	return &Env{Config: cfg, Client: c, Scheme: scheme, env: env}, nil
}

// Kubectl runs the kubectl built beside kube-apiserver against this control
// plane, as its admin user, and returns its standard output.
func (e *Env) Kubectl(args ...string) (string, error) {
	stdout, stderr, err := e.env.ControlPlane.KubeCtl().Run(args...)
	if err != nil {
		errText, _ := io.ReadAll(stderr)
		return "", fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, errText)
	}
	out, err := io.ReadAll(stdout)
	return string(out), err
}

// Stop stops the control plane.
func (e *Env) Stop() error { return e.env.Stop() }

// RepoRoot is the root of this repository.
func RepoRoot() string {
	_, file, _, _ := goruntime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}
