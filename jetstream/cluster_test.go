package jetstream

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// natsCluster starts n nats-servers with JetStream on loopback ports,
// routed into one cluster.
func natsCluster(t *testing.T, n int) []*server.Server {
	t.Helper()
	routes := make([]string, n)
	ports := make([]int, n)
	for i := range n {
		addr := freeAddr(t)
		routes[i] = "nats://" + addr
		fmt.Sscanf(addr[strings.LastIndexByte(addr, ':')+1:], "%d", &ports[i])
	}
	servers := make([]*server.Server, n)
	for i := range n {
		s, err := server.NewServer(&server.Options{
			ServerName: fmt.Sprintf("n%d", i), Host: "127.0.0.1", Port: -1,
			JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
			Cluster: server.ClusterOpts{Name: "eventpipe-test", Host: "127.0.0.1", Port: ports[i]},
			Routes:  server.RoutesFromStr(strings.Join(routes, ",")),
		})
		if err != nil {
			t.Fatal(err)
		}
		go s.Start()
		servers[i] = s
		t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	}
	for _, s := range servers {
		if !s.ReadyForConnections(60 * time.Second) {
			t.Fatal("cluster node not ready")
		}
	}
	return servers
}

// A three-node cluster with the stream replicated three times: the store
// keeps accepting and delivering events after the stream's leader dies.
func TestClusterSurvivesANodeKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	servers := natsCluster(t, 3)
	urls := make([]string, len(servers))
	for i, s := range servers {
		urls[i] = s.ClientURL()
	}
	cfg := *NewStoreConfig()
	cfg.URL, cfg.Replicas, cfg.PublishTimeout = strings.Join(urls, ","), 3, 5*time.Second
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	s := NewStore(settings(t), cfg)
	// The cluster elects its JetStream leader after the nodes meet.
	waitFor(t, "a JetStream meta leader", func() bool {
		for _, srv := range servers {
			if srv.JetStreamIsLeader() {
				return true
			}
		}
		return false
	})
	waitFor(t, "the cluster to accept the stream", func() bool { return s.Start(context.Background()) == nil })
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })

	ctx := context.Background()
	var sent []string
	appendAll := func(batches int) {
		for range batches {
			evs := events(100, "agent.step", "tool.failed")
			// A batch refused while the cluster elects a new leader is
			// published again, as a source would: ids keep it once.
			waitFor(t, "the batch stored", func() bool { _, err := s.Append(ctx, evs); return err == nil })
			for _, ev := range evs {
				sent = append(sent, ev.ID)
			}
		}
	}
	appendAll(10)
	info, err := s.js.Stream(ctx, cfg.Stream)
	if err != nil {
		t.Fatal(err)
	}
	leader := info.CachedInfo().Cluster.Leader
	killed := false
	for _, srv := range servers {
		if srv.Name() == leader {
			srv.Shutdown()
			srv.WaitForShutdown()
			killed = true
		}
	}
	if !killed {
		t.Fatalf("stream leader %q is none of the nodes", leader)
	}
	appendAll(10)

	got := collect(t, s, len(sent))
	seen := map[string]bool{}
	for _, ev := range got {
		seen[ev.ID] = true
	}
	for _, id := range sent {
		if !seen[id] {
			t.Fatalf("event %s stored but not delivered", id)
		}
	}
	t.Logf("killed %s (the stream leader); %d events stored and delivered, %d deliveries", leader, len(sent), len(got))
}
