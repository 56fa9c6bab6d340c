package controllers

import (
	"context"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// farm returns the WebFarm named by key ("namespace/name"), nil when gone.
func (s *shared) farm(ctx context.Context, key string) (*webfarmv1.WebFarm, error) {
	ns, name, _ := strings.Cut(key, "/")
	farm := &webfarmv1.WebFarm{}
	err := s.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, farm)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("getting WebFarm %s: %w", key, err)
	}
	return farm, nil
}

// failoverIP returns the named FailoverIP, nil when it does not exist.
func (s *shared) failoverIP(ctx context.Context, namespace, name string) (*webfarmv1.FailoverIP, error) {
	fip := &webfarmv1.FailoverIP{}
	err := s.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, fip)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("getting FailoverIP %s/%s: %w", namespace, name, err)
	}
	return fip, nil
}

// frontNode returns the named FrontNode, nil when it does not exist.
func (s *shared) frontNode(ctx context.Context, name string) (*webfarmv1.FrontNode, error) {
	front := &webfarmv1.FrontNode{}
	err := s.Get(ctx, types.NamespacedName{Name: name}, front)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("getting FrontNode %s: %w", name, err)
	}
	return front, nil
}

// selectorMatches reports whether an optional selector matches; no selector
// matches everything, an invalid one nothing.
func selectorMatches(sel *metav1.LabelSelector, set map[string]string) bool {
	if sel == nil {
		return true
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	return err == nil && s.Matches(labels.Set(set))
}
