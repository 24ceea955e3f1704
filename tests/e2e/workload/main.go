// kind-audit-workload is a tiny in-cluster client for the e2e tests of pytest-kind-audit: run as a Job's
// pod, it reaches the API server by its Service's DNS name (so CoreDNS and kube-proxy are on the path, not
// only the KUBERNETES_SERVICE_HOST address), lists the ConfigMaps of its own namespace, creates one and
// reads it back, as its ServiceAccount and with a user agent the audit log shows.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

const (
	userAgent     = "kind-audit-workload/1"
	namespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
)

func main() {
	server := flag.String("server", "https://kubernetes.default.svc", "the API server's address")
	name := flag.String("configmap", "kind-audit-workload", "name of the ConfigMap to create")
	flag.Parse()
	if err := run(*server, *name); err != nil {
		fmt.Fprintf(os.Stderr, "%s: ERROR: %v\n", userAgent, err)
		os.Exit(1)
	}
}

func run(server, name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	raw, err := os.ReadFile(namespaceFile)
	if err != nil {
		return fmt.Errorf("reading the service account's namespace: %w (is this running in a pod?)", err)
	}
	namespace := strings.TrimSpace(string(raw))

	config, err := rest.InClusterConfig() // the token and CA the kubelet mounted; its Host is an IP
	if err != nil {
		return fmt.Errorf("in-cluster config: %w", err)
	}
	config.Host = server // by name: resolved by the cluster's DNS, routed by the Service
	config.UserAgent = userAgent
	if host := hostOf(server); net.ParseIP(host) == nil {
		addrs, err := net.DefaultResolver.LookupHost(ctx, host)
		if err != nil {
			return fmt.Errorf("resolving %s: %w", host, err)
		}
		fmt.Printf("server %s (%s resolves to %s)\n", server, host, strings.Join(addrs, ", "))
	}
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		return fmt.Errorf("client for %s: %w", server, err)
	}
	configMaps := client.CoreV1().ConfigMaps(namespace)

	list, err := configMaps.List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("listing configmaps in %s: %w", namespace, err)
	}
	fmt.Printf("listed %d configmaps in %s\n", len(list.Items), namespace)

	want := map[string]string{"written-by": userAgent}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: want}
	if _, err := configMaps.Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating configmap %s/%s: %w", namespace, name, err)
	}
	fmt.Printf("created configmap %s/%s\n", namespace, name)

	got, err := configMaps.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("reading configmap %s/%s back: %w", namespace, name, err)
	}
	if got.Data["written-by"] != want["written-by"] {
		return fmt.Errorf("configmap %s/%s read back with data %v, wrote %v", namespace, name, got.Data, want)
	}
	fmt.Printf("read configmap %s/%s back: written-by=%s\n", namespace, name, got.Data["written-by"])
	return nil
}

// hostOf is the host part of an https://host[:port] address.
func hostOf(server string) string {
	host := strings.TrimPrefix(strings.TrimPrefix(server, "https://"), "http://")
	host = strings.SplitN(host, "/", 2)[0]
	if h, _, err := net.SplitHostPort(host); err == nil {
		return h
	}
	return host
}
