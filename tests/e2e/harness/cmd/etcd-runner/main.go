// Command etcd-runner starts a single-member etcd (go.etcd.io/etcd/server/v3/embed) for
// throw-away test clusters. It listens only on the given URLs (loopback in practice),
// prints "etcd-runner: ready <client-url>" on stdout once the member serves clients, and
// shuts down cleanly on SIGTERM/SIGINT.
package main

import (
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

func parseURLs(s string) ([]url.URL, error) {
	var out []url.URL
	for _, part := range strings.Split(s, ",") {
		u, err := url.Parse(strings.TrimSpace(part))
		if err != nil {
			return nil, fmt.Errorf("bad URL %q: %w", part, err)
		}
		out = append(out, *u)
	}
	return out, nil
}

func main() {
	name := flag.String("name", "default", "member name")
	dataDir := flag.String("data-dir", "", "data directory (required)")
	clientURLs := flag.String("listen-client-urls", "http://127.0.0.1:2379", "comma-separated client URLs")
	peerURLs := flag.String("listen-peer-urls", "http://127.0.0.1:2380", "comma-separated peer URLs")
	logLevel := flag.String("log-level", "warn", "zap log level (debug, info, warn, error)")
	quotaBytes := flag.Int64("quota-backend-bytes", 0, "backend quota in bytes (0 = etcd default)")
	readyTimeout := flag.Duration("ready-timeout", 60*time.Second, "give up when not ready after this long")
	flag.Parse()
	if *dataDir == "" {
		fmt.Fprintln(os.Stderr, "etcd-runner: --data-dir is required")
		os.Exit(2)
	}

	cfg := embed.NewConfig()
	cfg.Name = *name
	cfg.Dir = *dataDir
	cfg.LogLevel = *logLevel
	cfg.Logger = "zap"
	cfg.LogOutputs = []string{"stderr"}
	if *quotaBytes > 0 {
		cfg.QuotaBackendBytes = *quotaBytes
	}
	lcurls, err := parseURLs(*clientURLs)
	if err != nil {
		fmt.Fprintln(os.Stderr, "etcd-runner:", err)
		os.Exit(2)
	}
	lpurls, err := parseURLs(*peerURLs)
	if err != nil {
		fmt.Fprintln(os.Stderr, "etcd-runner:", err)
		os.Exit(2)
	}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = lcurls, lcurls
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = lpurls, lpurls
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.ClusterState = embed.ClusterStateFlagNew

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "etcd-runner: start:", err)
		os.Exit(1)
	}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)

	select {
	case <-e.Server.ReadyNotify():
		fmt.Printf("etcd-runner: ready %s\n", lcurls[0].String())
	case <-time.After(*readyTimeout):
		fmt.Fprintf(os.Stderr, "etcd-runner: not ready after %s\n", *readyTimeout)
		e.Server.Stop()
		e.Close()
		os.Exit(1)
	case s := <-sigs:
		fmt.Fprintf(os.Stderr, "etcd-runner: %s before ready, stopping\n", s)
		e.Close()
		os.Exit(0)
	}

	select {
	case s := <-sigs:
		fmt.Fprintf(os.Stderr, "etcd-runner: %s, stopping\n", s)
		e.Close()
		fmt.Fprintln(os.Stderr, "etcd-runner: stopped")
	case err := <-e.Err():
		fmt.Fprintln(os.Stderr, "etcd-runner: server error:", err)
		e.Close()
		os.Exit(1)
	}
}
