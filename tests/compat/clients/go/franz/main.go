// franz-go in the compatibility harness. Two roles, whose output run.py checks, and the
// transaction roles of txn.go:
//
//	basic BOOTSTRAP TOPIC COUNT   create TOPIC (3 partitions) with kadm, produce COUNT keyed
//	                              records, read them back, delete TOPIC ("T", "P", "C", "D")
//	member BOOTSTRAP TOPIC GROUP  a consumer group member: "R partition offset value" per
//	                              record, "A p1,p2,..." for its assignment, commits after each
//	                              poll, leaves the group cleanly when stdin closes.
package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func main() {
	if len(os.Args) > 1 && strings.HasPrefix(os.Args[1], "txn-") {
		if err := transactions(os.Args[1], os.Args[2:]); err != nil {
			fmt.Printf("E %v\n", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) != 5 {
		fmt.Fprintln(os.Stderr, "usage: franz basic BOOTSTRAP TOPIC COUNT | member BOOTSTRAP TOPIC GROUP")
		os.Exit(2)
	}
	if os.Args[1] == "basic" {
		n, _ := strconv.Atoi(os.Args[4])
		if err := basic(os.Args[2], os.Args[3], n); err != nil {
			fmt.Printf("E %v\n", err)
			os.Exit(1)
		}
		return
	}
	member(os.Args[2], os.Args[3], os.Args[4])
}

func basic(bootstrap, topic string, count int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	client, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		return err
	}
	defer client.Close()
	admin := kadm.NewClient(client)
	if _, err := admin.CreateTopic(ctx, 3, 1, nil, topic); err != nil {
		return fmt.Errorf("create topic: %w", err)
	}
	details, err := admin.ListTopics(ctx, topic)
	if err != nil {
		return err
	}
	fmt.Printf("T %d\n", len(details[topic].Partitions))
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 0; i < count; i++ {
		k, v := fmt.Sprintf("k%d", i%30), fmt.Sprintf("v%d", i)
		wg.Add(1)
		client.Produce(ctx, &kgo.Record{Topic: topic, Key: []byte(k), Value: []byte(v)}, func(r *kgo.Record, err error) {
			defer wg.Done()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				fmt.Fprintf(out, "E produce: %v\n", err)
			} else {
				fmt.Fprintf(out, "P %d %d %s %s\n", r.Partition, r.Offset, r.Key, r.Value)
			}
		})
	}
	wg.Wait()
	out.Flush()
	reader, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
		topic: {0: kgo.NewOffset().AtStart(), 1: kgo.NewOffset().AtStart(), 2: kgo.NewOffset().AtStart()},
	}))
	if err != nil {
		return err
	}
	n := 0
	for n < count && ctx.Err() == nil {
		pctx, pcancel := context.WithTimeout(ctx, 500*time.Millisecond)
		fetches := reader.PollFetches(pctx)
		pcancel()
		fetches.EachRecord(func(r *kgo.Record) {
			fmt.Fprintf(out, "C %d %d %s %s\n", r.Partition, r.Offset, r.Key, r.Value)
			n++
		})
		out.Flush()
	}
	reader.Close()
	if _, err := admin.DeleteTopics(ctx, topic); err != nil {
		return fmt.Errorf("delete topic: %w", err)
	}
	fmt.Println("D")
	return nil
}

func member(bootstrap, topic, group string) {
	var mu sync.Mutex
	assigned := map[int32]bool{}
	// Every topic's partitions count in the assignment line: a regex member may own several.
	partitions := func(m map[string][]int32) []int32 {
		var ps []int32
		for _, p := range m {
			ps = append(ps, p...)
		}
		return ps
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(bootstrap),
		kgo.ConsumerGroup(group),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			// Eager balancers revoke everything first; cooperative ones and the consumer
			// protocol hand out only what is added.
			mu.Lock()
			defer mu.Unlock()
			for _, p := range partitions(m) {
				assigned[p] = true
			}
		}),
		kgo.OnPartitionsRevoked(func(ctx context.Context, c *kgo.Client, m map[string][]int32) {
			_ = c.CommitUncommittedOffsets(ctx)
			mu.Lock()
			defer mu.Unlock()
			for _, p := range partitions(m) {
				delete(assigned, p)
			}
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			mu.Lock()
			defer mu.Unlock()
			for _, p := range partitions(m) {
				delete(assigned, p)
			}
		}),
	}
	// A topic starting with "^" is a regular expression.
	if strings.HasPrefix(topic, "^") {
		opts = append(opts, kgo.ConsumeRegex(), kgo.ConsumeTopics(topic))
	} else {
		opts = append(opts, kgo.ConsumeTopics(topic))
	}
	// COMPAT_GROUP_PROTOCOL=consumer runs the member on the consumer protocol (KIP-848): the
	// broker assigns with the balancer's server-side twin (sticky -> uniform, range -> range)
	// and sets the session and heartbeat times.
	if os.Getenv("COMPAT_GROUP_PROTOCOL") == "consumer" {
		balancer := kgo.StickyBalancer()
		if os.Getenv("COMPAT_GROUP_REMOTE_ASSIGNOR") == "range" {
			balancer = kgo.RangeBalancer()
		}
		opts = append(opts, kgo.ServerSideBalancer(), kgo.Balancers(balancer))
	} else {
		opts = append(opts, kgo.SessionTimeout(6*time.Second), kgo.HeartbeatInterval(500*time.Millisecond),
			kgo.Balancers(kgo.RangeBalancer()))
	}
	client, err := kgo.NewClient(opts...)
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
