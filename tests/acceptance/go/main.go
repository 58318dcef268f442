// A franz-go consumer group member for the acceptance scenarios: prints "R partition offset
// value" per record and "A p1,p2,..." for its assignment, commits after each poll, and
// leaves the group cleanly when stdin closes.
package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func main() {
	bootstrap, topic, group := os.Args[1], os.Args[2], os.Args[3]
	var mu sync.Mutex
	assigned := map[int32]bool{}
	client, err := kgo.NewClient(
		kgo.SeedBrokers(bootstrap),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.SessionTimeout(6*time.Second),
		kgo.HeartbeatInterval(500*time.Millisecond),
		kgo.Balancers(kgo.RangeBalancer()),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			// The eager range balancer hands out a member's whole assignment each time.
			mu.Lock()
			defer mu.Unlock()
			assigned = map[int32]bool{}
			for _, p := range m[topic] {
				assigned[p] = true
			}
		}),
		kgo.OnPartitionsRevoked(func(ctx context.Context, c *kgo.Client, m map[string][]int32) {
			_ = c.CommitUncommittedOffsets(ctx)
			mu.Lock()
			defer mu.Unlock()
			for _, p := range m[topic] {
				delete(assigned, p)
			}
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			mu.Lock()
			defer mu.Unlock()
			for _, p := range m[topic] {
				delete(assigned, p)
			}
		}),
	)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	out := bufio.NewWriter(os.Stdout)
	for ctx.Err() == nil {
		pctx, pcancel := context.WithTimeout(ctx, 200*time.Millisecond)
		fetches := client.PollFetches(pctx)
		pcancel()
		n := 0
		fetches.EachRecord(func(r *kgo.Record) {
			fmt.Fprintf(out, "R %d %d %s\n", r.Partition, r.Offset, string(r.Value))
			n++
		})
		if n > 0 {
			_ = client.CommitUncommittedOffsets(context.Background())
		}
		mu.Lock()
		ps := make([]string, 0, len(assigned))
		keys := make([]int, 0, len(assigned))
		for p := range assigned {
			keys = append(keys, int(p))
		}
		mu.Unlock()
		sort.Ints(keys)
		for _, p := range keys {
			ps = append(ps, fmt.Sprint(p))
		}
		fmt.Fprintf(out, "A %s\n", strings.Join(ps, ","))
		out.Flush()
	}
	client.Close() // leaves the group
}
