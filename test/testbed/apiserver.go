package testbed

import (
	"bytes"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/webfarm/webfarm/internal/testenv"
)

// adminUser is the identity every kubeconfig of the testbed carries: the
// controller, the agents and the person exploring all act as cluster admin.
var adminUser = envtest.User{Name: "webfarm-testbed", Groups: []string{"system:masters"}}

// controlPlane is a real kube-apiserver and etcd (envtest) in the root
// namespace on 127.0.0.1, with the webfarm CRDs installed.
type controlPlane struct {
	env     *envtest.Environment
	admin   *rest.Config // direct, as adminUser
	client  client.Client
	kubectl string // path of the kubectl built beside kube-apiserver
}

// assetsDir returns KUBEBUILDER_ASSETS, building the control plane with
// hack/control-plane.sh when it is not set (quick once cached).
func assetsDir() (string, error) {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir, nil
	}
	script := filepath.Join(testenv.RepoRoot(), "hack", "control-plane.sh")
	var stderr bytes.Buffer
	cmd := exec.Command(script)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s: %w: %s", script, err, stderr.String())
	}
	return strings.TrimSpace(string(out)), nil
}

func startControlPlane(logDir string) (*controlPlane, error) {
	assets, err := assetsDir()
	if err != nil {
		return nil, err
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(testenv.RepoRoot(), "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
		Scheme:                testenv.Scheme(),
	}
	if out, err := os.Create(filepath.Join(logDir, "kube-apiserver.log")); err == nil {
		api := env.ControlPlane.GetAPIServer()
		api.Out, api.Err = out, out
	}
	if _, err := env.Start(); err != nil {
		return nil, fmt.Errorf("starting kube-apiserver and etcd (assets %s): %w", assets, err)
	}
	cp := &controlPlane{env: env, kubectl: filepath.Join(assets, "kubectl")}
	if err := cp.addAdmin(); err != nil {
		_ = env.Stop()
		return nil, err
	}
	return cp, nil
}

func (cp *controlPlane) addAdmin() error {
	user, err := cp.env.AddUser(adminUser, nil)
	if err != nil {
		return fmt.Errorf("adding user %s: %w", adminUser.Name, err)
	}
	cp.admin = rest.CopyConfig(user.Config())
	// No client-side rate limit, as ctrl.GetConfig gives the controller
	// and the agents: client-go's default of 5 requests a second made
	// every poll of the status 200 ms apart, in step with the owner's
	// witnesses, and each then seemed to take 115-163 ms to land where
	// its agent timed it at 52 ms.
	cp.admin.QPS = -1
	cp.client, err = client.New(cp.admin, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		return fmt.Errorf("client for user %s: %w", adminUser.Name, err)
	}
	return nil
}

// hostPort is the API server's address in the root namespace.
func (cp *controlPlane) hostPort() (string, error) {
	u, err := url.Parse(cp.admin.Host)
	if err != nil {
		return "", fmt.Errorf("API server URL %q: %w", cp.admin.Host, err)
	}
	return u.Host, nil
}

// writeKubeconfig writes a kubeconfig for the admin user that reaches the
// API server at server (host:port), verifying it with the envtest CA.
func (cp *controlPlane) writeKubeconfig(path, server string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["webfarm-testbed"] = &clientcmdapi.Cluster{
		Server:                   "https://" + server,
		CertificateAuthorityData: cp.admin.CAData,
	}
	cfg.AuthInfos[adminUser.Name] = &clientcmdapi.AuthInfo{
		ClientCertificateData: cp.admin.CertData,
		ClientKeyData:         cp.admin.KeyData,
		Token:                 cp.admin.BearerToken,
	}
	cfg.Contexts["webfarm-testbed"] = &clientcmdapi.Context{
		Cluster:   "webfarm-testbed",
		AuthInfo:  adminUser.Name,
		Namespace: "default",
	}
	cfg.CurrentContext = "webfarm-testbed"
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("writing kubeconfig %s: %w", path, err)
	}
	return nil
}

func (cp *controlPlane) stop() error {
	if err := cp.env.Stop(); err != nil {
		return fmt.Errorf("stopping kube-apiserver and etcd: %w", err)
	}
	return nil
}
