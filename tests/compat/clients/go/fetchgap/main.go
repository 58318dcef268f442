// fetchgap: the producer and the consumer-protocol member of tests/compat/incremental.py,
// which measures how long members that keep their partitions go without records while
// another member joins or leaves. Every time printed is the wall clock in milliseconds.
//
//	produce BOOTSTRAP TOPIC PARTITIONS INTERVAL_MS   one record to every partition each
//	                              INTERVAL_MS until stdin closes; "P ms produced" once a second,
//	                              "E error" for a failed record
//	member BOOTSTRAP TOPIC GROUP  a member on group.protocol=consumer (KIP-848, the broker's
//	                              uniform assignor): "A ms p1,p2,..." whenever its assignment
//	                              changes, "R ms partition first_offset last_offset count
//	                              first_timestamp" for each partition of each poll that returned
//	                              records, with ms the moment the poll returned and the first
//	                              record's timestamp (its producer's clock, CreateTime); leaves
//	                              cleanly when stdin closes and prints "L ms" once it has left.
//
// A member prints per partition and poll, not per record: the gap between two receipts is
// what is measured, and one line per record would only cost the 2-core test machine CPU.
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
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// pollTimeout bounds one poll, so an idle member still prints its assignment changes and
// notices stdin closing within this time.
const pollTimeout = 100 * time.Millisecond

func nowMs() int64 { return time.Now().UnixMilli() }

func main() {
	if len(os.Args) == 6 && os.Args[1] == "produce" {
		partitions, err1 := strconv.Atoi(os.Args[4])
		intervalMs, err2 := strconv.Atoi(os.Args[5])
		if err1 != nil || err2 != nil || partitions <= 0 || intervalMs <= 0 {
			fmt.Fprintln(os.Stderr, "produce: PARTITIONS and INTERVAL_MS must be positive integers")
			os.Exit(2)
		}
		produce(os.Args[2], os.Args[3], int32(partitions), time.Duration(intervalMs)*time.Millisecond)
		return
	}
	if len(os.Args) == 5 && os.Args[1] == "member" {
		member(os.Args[2], os.Args[3], os.Args[4])
		return
	}
	fmt.Fprintln(os.Stderr, "usage: fetchgap produce BOOTSTRAP TOPIC PARTITIONS INTERVAL_MS | member BOOTSTRAP TOPIC GROUP")
	os.Exit(2)
}

// stdinClosed is cancelled once stdin reaches its end: the parent's way to stop a process.
func stdinClosed() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	return ctx
}

func produce(bootstrap, topic string, partitions int32, interval time.Duration) {
	client, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer client.Close()
	ctx := stdinClosed()
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	var produced atomic.Int64
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	report := time.NewTicker(time.Second)
	defer report.Stop()
	for seq := 0; ; seq++ {
		select {
		case <-ctx.Done():
			_ = client.Flush(context.Background())
			return
		case <-report.C:
			mu.Lock()
			fmt.Fprintf(out, "P %d %d\n", nowMs(), produced.Load())
			out.Flush()
			mu.Unlock()
		case <-ticker.C:
			value := []byte(strconv.Itoa(seq))
			for p := int32(0); p < partitions; p++ {
				client.Produce(ctx, &kgo.Record{Partition: p, Value: value}, func(_ *kgo.Record, err error) {
					if err != nil {
						if ctx.Err() == nil {
							mu.Lock()
							fmt.Fprintf(out, "E %v\n", err)
							mu.Unlock()
						}
						return
					}
					produced.Add(1)
				})
			}
		}
	}
}

func member(bootstrap, topic, group string) {
	// The callbacks run in the client's goroutines; the poll loop prints what they changed.
	var mu sync.Mutex
	assigned := map[int32]bool{}
	changedMs := nowMs() // when the assignment last changed; 0 once printed
	update := func(m map[string][]int32, owned bool) {
		mu.Lock()
		defer mu.Unlock()
		for _, p := range m[topic] {
			if owned {
				assigned[p] = true
			} else {
				delete(assigned, p)
			}
		}
		changedMs = nowMs()
	}
	client, err := kgo.NewClient(
		kgo.SeedBrokers(bootstrap),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ServerSideBalancer(),
		kgo.Balancers(kgo.StickyBalancer()), // the broker's "uniform" assignor
		kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { update(m, true) }),
		kgo.OnPartitionsRevoked(func(ctx context.Context, c *kgo.Client, m map[string][]int32) {
			_ = c.CommitUncommittedOffsets(ctx)
			update(m, false)
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { update(m, false) }),
		kgo.WithLogger(kgo.BasicLogger(os.Stderr, kgo.LogLevelInfo, func() string {
			return time.Now().Format("15:04:05.000 ")
		})),
	)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx := stdinClosed()
	out := bufio.NewWriter(os.Stdout)
	for ctx.Err() == nil {
		pctx, pcancel := context.WithTimeout(ctx, pollTimeout)
		fetches := client.PollFetches(pctx)
		pcancel()
		received := nowMs()
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			if n := len(p.Records); n > 0 {
				fmt.Fprintf(out, "R %d %d %d %d %d %d\n", received, p.Partition, p.Records[0].Offset, p.Records[n-1].Offset, n,
					p.Records[0].Timestamp.UnixMilli())
			}
		})
		mu.Lock()
		if changedMs != 0 {
			keys := make([]int, 0, len(assigned))
			for p := range assigned {
				keys = append(keys, int(p))
			}
			sort.Ints(keys)
			ps := make([]string, len(keys))
			for i, p := range keys {
				ps[i] = strconv.Itoa(p)
			}
			fmt.Fprintf(out, "A %d %s\n", changedMs, strings.Join(ps, ","))
			changedMs = 0
		}
		mu.Unlock()
		out.Flush()
	}
	client.Close() // leaves the group: a heartbeat with member epoch -1
	fmt.Fprintf(out, "L %d\n", nowMs())
	out.Flush()
}
