// sarama in the compatibility harness. Two roles, whose output run.py checks:
//
//	basic BOOTSTRAP TOPIC COUNT   create TOPIC (3 partitions) with ClusterAdmin, produce COUNT
//	                              keyed records, read them back, delete TOPIC ("T", "P", "C", "D")
//	member BOOTSTRAP TOPIC GROUP  a consumer group member: "R partition offset value" per
//	                              record, "A p1,p2,..." for its assignment, commits what it
//	                              read, leaves the group cleanly when stdin closes.
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

	"github.com/IBM/sarama"
)

func config() *sarama.Config {
	c := sarama.NewConfig()
	c.Version = sarama.V3_6_0_0
	c.ClientID = "weir-compat-sarama"
	return c
}

func main() {
	if len(os.Args) != 5 {
		fmt.Fprintln(os.Stderr, "usage: sarama basic BOOTSTRAP TOPIC COUNT | member BOOTSTRAP TOPIC GROUP")
		os.Exit(2)
	}
	var err error
	if os.Args[1] == "basic" {
		n, _ := strconv.Atoi(os.Args[4])
		err = basic(os.Args[2], os.Args[3], n)
	} else {
		err = member(os.Args[2], os.Args[3], os.Args[4])
	}
	if err != nil {
		fmt.Printf("E %v\n", err)
		os.Exit(1)
	}
}

func basic(bootstrap, topic string, count int) error {
	cfg := config()
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Partitioner = sarama.NewHashPartitioner
	cfg.Producer.Flush.Frequency = 5 * time.Millisecond
	// Idempotence keeps each partition in produce order through retries.
	cfg.Producer.Idempotent = true
	cfg.Net.MaxOpenRequests = 1
	client, err := sarama.NewClient([]string{bootstrap}, cfg)
	if err != nil {
		return err
	}
	defer client.Close()
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		return err
	}
	if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 1}, false); err != nil {
		return fmt.Errorf("create topic: %w", err)
	}
	var parts []int32
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		_ = client.RefreshMetadata(topic)
		if parts, err = client.Partitions(topic); err == nil && len(parts) == 3 {
			break
		}
	}
	fmt.Printf("T %d\n", len(parts))
	producer, err := sarama.NewAsyncProducerFromClient(client)
	if err != nil {
		return err
	}
	out := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for m := range producer.Successes() {
			k, _ := m.Key.Encode()
			v, _ := m.Value.Encode()
			fmt.Fprintf(out, "P %d %d %s %s\n", m.Partition, m.Offset, k, v)
		}
	}()
	go func() {
		defer wg.Done()
		for e := range producer.Errors() {
			fmt.Fprintf(out, "E produce: %v\n", e.Err)
		}
	}()
	for i := 0; i < count; i++ {
		producer.Input() <- &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(fmt.Sprintf("k%d", i%30)),
			Value: sarama.StringEncoder(fmt.Sprintf("v%d", i))}
	}
	producer.AsyncClose()
	wg.Wait()
	out.Flush()
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return err
	}
	n := 0
	for p := int32(0); p < 3; p++ {
		hw, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return err
		}
		if hw == 0 {
			continue
		}
		pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			return err
		}
		timeout := time.After(60 * time.Second)
	read:
		for {
			select {
			case m := <-pc.Messages():
				fmt.Fprintf(out, "C %d %d %s %s\n", m.Partition, m.Offset, m.Key, m.Value)
				n++
				if m.Offset+1 >= hw {
					break read
				}
			case e := <-pc.Errors():
				fmt.Fprintf(out, "E consume: %v\n", e.Err)
				break read
			case <-timeout:
				break read
			}
		}
		pc.Close()
	}
	consumer.Close()
	out.Flush()
	if err := admin.DeleteTopic(topic); err != nil {
		return fmt.Errorf("delete topic: %w", err)
	}
	fmt.Println("D")
	return nil
}

// handler prints what the member reads and marks it consumed; sarama commits marked
// offsets (AutoCommit every 200 ms, and on leaving).
type handler struct {
	mu       sync.Mutex
	assigned []int32
	out      *bufio.Writer
}

func (h *handler) Setup(s sarama.ConsumerGroupSession) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.assigned = append([]int32(nil), s.Claims()[topicName]...)
	sort.Slice(h.assigned, func(i, j int) bool { return h.assigned[i] < h.assigned[j] })
	return nil
}

func (h *handler) Cleanup(s sarama.ConsumerGroupSession) error {
	s.Commit()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.assigned = nil
	return nil
}

func (h *handler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for m := range c.Messages() {
		h.mu.Lock()
		fmt.Fprintf(h.out, "R %d %d %s\n", m.Partition, m.Offset, m.Value)
		h.mu.Unlock()
		s.MarkMessage(m, "")
	}
	return nil
}

var topicName string

func member(bootstrap, topic, group string) error {
	topicName = topic
	cfg := config()
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Interval = 200 * time.Millisecond
	cfg.Consumer.Group.Session.Timeout = 6 * time.Second
	cfg.Consumer.Group.Heartbeat.Interval = 500 * time.Millisecond
	cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyRange()}
	g, err := sarama.NewConsumerGroup([]string{bootstrap}, group, cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	h := &handler{out: bufio.NewWriter(os.Stdout)}
	go func() {
		for ctx.Err() == nil {
			if err := g.Consume(ctx, []string{topic}, h); err != nil {
				h.mu.Lock()
				fmt.Fprintf(os.Stderr, "consume: %v\n", err)
				h.mu.Unlock()
				time.Sleep(200 * time.Millisecond)
			}
		}
	}()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for ctx.Err() == nil {
		select {
		case <-tick.C:
		case <-ctx.Done():
		}
		h.mu.Lock()
		ps := make([]string, 0, len(h.assigned))
		for _, p := range h.assigned {
			ps = append(ps, fmt.Sprint(p))
		}
		fmt.Fprintf(h.out, "A %s\n", strings.Join(ps, ","))
		h.out.Flush()
		h.mu.Unlock()
	}
	return g.Close() // commits and leaves the group
}
