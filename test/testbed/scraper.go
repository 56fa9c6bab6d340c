package testbed

import (
	"context"
	"fmt"
	"path/filepath"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/webfarm/webfarm/internal/testenv"
)

// ScraperServiceAccount is who the testbed scrapes metrics as: a
// ServiceAccount of the operator namespace bound to config/metrics'
// metrics-reader ClusterRole, as the chart binds the one Prometheus runs as.
const ScraperServiceAccount = "webfarm-scraper"

// metricsReaderRole is config/metrics' ClusterRole of a scraper.
const metricsReaderRole = "webfarm-metrics-reader"

// grantScraper installs the scraper's ClusterRole and binds it to
// ScraperServiceAccount, whose token every scrape of the testbed's
// processes then carries: they serve their metrics only to clients the API
// server authenticates and authorizes.
func (tb *Testbed) grantScraper(ctx context.Context) error {
	if _, err := tb.Kubectl("apply", "-f", filepath.Join(testenv.RepoRoot(), "config", "metrics", "reader_role.yaml")); err != nil {
		return err
	}
	token, err := tb.ServiceAccountToken(ctx, ScraperServiceAccount)
	if err != nil {
		return err
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: ScraperServiceAccount},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: metricsReaderRole},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: OperatorNamespace, Name: ScraperServiceAccount}},
	}
	if err := tb.cp.client.Create(ctx, binding); client.IgnoreAlreadyExists(err) != nil {
		return fmt.Errorf("binding %s to %s: %w", ScraperServiceAccount, metricsReaderRole, err)
	}
	tb.scrapeToken = token
	for _, f := range tb.fronts {
		f.scrapeToken = token
	}
	tb.say("scraper: ServiceAccount %s/%s, bound to ClusterRole %s (config/metrics); metrics are scraped over HTTPS with its token",
		OperatorNamespace, ScraperServiceAccount, metricsReaderRole)
	return nil
}

// ServiceAccountToken creates ServiceAccount name in the operator namespace
// unless it exists, and returns a token of it valid for a day.
func (tb *Testbed) ServiceAccountToken(ctx context.Context, name string) (string, error) {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: OperatorNamespace, Name: name}}
	if err := tb.cp.client.Create(ctx, sa); client.IgnoreAlreadyExists(err) != nil {
		return "", fmt.Errorf("creating ServiceAccount %s: %w", name, err)
	}
	day := int64(24 * 60 * 60)
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &day}}
	if err := tb.cp.client.SubResource("token").Create(ctx, sa, req); err != nil {
		return "", fmt.Errorf("requesting a token of ServiceAccount %s: %w", name, err)
	}
	return req.Status.Token, nil
}
