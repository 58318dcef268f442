// The transaction roles of the franz-go driver, on 3-partition topics run.py created:
//
//	txn-commit BOOTSTRAP TOPIC COUNT   COUNT records in five committed transactions
//	txn-abort BOOTSTRAP TOPIC COUNT    committed "a", aborted "b" (flushed first), committed "c"
//	txn-open BOOTSTRAP TOPIC COUNT     committed "a", then "b" in a transaction left open while
//	                                   end offsets are listed and both readers read; then commit
//	txn-fence BOOTSTRAP TOPIC COUNT    a first producer's open "f" fenced by a second one with
//	                                   the same transactional ID, which commits "g"
//	txn-ctp BOOTSTRAP INPUT OUTPUT GROUP COUNT
//	                                   consume-transform-produce in GROUP with a
//	                                   GroupTransactSession, the third transaction aborted
//
// They print the same lines as the Java driver (clients/java/Scenarios.java): "P partition
// offset key value" per record a transactional producer had acknowledged, "R reader partition
// offset key value" per record read (reader: committed, uncommitted or after), "L partition
// lso hw" while a transaction is open, "X event detail" for what a transaction call returned,
// "E message" on an error. WEIR_FRANZ_DEBUG=1 logs the client's requests to stderr.
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	txnTimeout     = 10 * time.Second
	txnRoleTimeout = 150 * time.Second
	readTimeout    = 30 * time.Second
)

func transactions(role string, args []string) error {
	want := map[string]int{"txn-commit": 3, "txn-abort": 3, "txn-open": 3, "txn-fence": 3, "txn-ctp": 5}[role]
	if want == 0 || len(args) != want {
		return fmt.Errorf("usage: franz %s: want %d arguments, got %d", role, want, len(args))
	}
	count, err := strconv.Atoi(args[len(args)-1])
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), txnRoleTimeout)
	defer cancel()
	switch role {
	case "txn-commit":
		return txnCommit(ctx, args[0], args[1], count)
	case "txn-abort":
		return txnAbort(ctx, args[0], args[1], count)
	case "txn-open":
		return txnOpen(ctx, args[0], args[1], count)
	case "txn-fence":
		return txnFence(ctx, args[0], args[1], count)
	default:
		return txnConsumeTransformProduce(ctx, args[0], args[1], args[2], args[3], count)
	}
}

func logOpts() []kgo.Opt {
	if os.Getenv("WEIR_FRANZ_DEBUG") == "" {
		return nil
	}
	return []kgo.Opt{kgo.WithLogger(kgo.BasicLogger(os.Stderr, kgo.LogLevelDebug, nil))}
}

// txnClient is a transactional producer; franz-go is idempotent with acks=all by default.
func txnClient(bootstrap, transactionalID string) (*kgo.Client, error) {
	return kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(bootstrap),
		kgo.TransactionalID(transactionalID),
		kgo.TransactionTimeout(txnTimeout),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(5 * time.Millisecond),
	}, logOpts()...)...)
}

// errName is a Kafka error's name (PRODUCER_FENCED) where there is one in the chain.
func errName(err error) string {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Message
	}
	return err.Error()
}

// acked collects "P" lines from the produce promises until they are printed.
type acked struct {
	mu    sync.Mutex
	wg    sync.WaitGroup
	lines []string
}

func (a *acked) send(ctx context.Context, cl *kgo.Client, topic, key, value string) {
	a.wg.Add(1)
	cl.Produce(ctx, &kgo.Record{Topic: topic, Key: []byte(key), Value: []byte(value)}, func(r *kgo.Record, err error) {
		defer a.wg.Done()
		a.mu.Lock()
		defer a.mu.Unlock()
		if err != nil {
			a.lines = append(a.lines, fmt.Sprintf("E produce %s %s: %v", key, value, err))
		} else {
			a.lines = append(a.lines, fmt.Sprintf("P %d %d %s %s", r.Partition, r.Offset, key, value))
		}
	})
}

func (a *acked) sendAll(ctx context.Context, cl *kgo.Client, topic, letter string, count int) {
	for i := 0; i < count; i++ {
		a.send(ctx, cl, topic, fmt.Sprintf("k%d", i%30), fmt.Sprintf("%s%d", letter, i))
	}
}

func (a *acked) print() {
	a.wg.Wait()
	a.mu.Lock()
	defer a.mu.Unlock()
	out := bufio.NewWriter(os.Stdout)
	for _, l := range a.lines {
		fmt.Fprintln(out, l)
	}
	out.Flush()
	a.lines = nil
}

// end flushes and ends the transaction, committing or aborting.
func end(ctx context.Context, cl *kgo.Client, commit kgo.TransactionEndTry) error {
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	return cl.EndTransaction(ctx, commit)
}

// readTxn reads TOPIC from the start until WANT records arrived (30 s at most), then one
// second more so a record that should not be there has its chance to show.
func readTxn(ctx context.Context, bootstrap, topic, reader string, level kgo.IsolationLevel, want int) error {
	start := kgo.NewOffset().AtStart()
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(bootstrap),
		kgo.FetchIsolationLevel(level),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: start, 1: start, 2: start}}),
	}, logOpts()...)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	n, deadline := 0, time.Now().Add(readTimeout)
	var extraUntil time.Time
	for time.Now().Before(deadline) && (extraUntil.IsZero() || time.Now().Before(extraUntil)) && ctx.Err() == nil {
		pctx, pcancel := context.WithTimeout(ctx, 200*time.Millisecond)
		fetches := cl.PollFetches(pctx)
		pcancel()
		for _, fe := range fetches.Errors() {
			if !errors.Is(fe.Err, context.DeadlineExceeded) && !errors.Is(fe.Err, context.Canceled) {
				fmt.Fprintf(out, "E consume %s %d: %v\n", fe.Topic, fe.Partition, fe.Err)
			}
		}
		fetches.EachRecord(func(r *kgo.Record) {
			fmt.Fprintf(out, "R %s %d %d %s %s\n", reader, r.Partition, r.Offset, r.Key, r.Value)
			n++
		})
		if n >= want && extraUntil.IsZero() {
			extraUntil = time.Now().Add(time.Second)
		}
	}
	return nil
}

func txnCommit(ctx context.Context, bootstrap, topic string, count int) error {
	cl, err := txnClient(bootstrap, topic+"-tx")
	if err != nil {
		return err
	}
	defer cl.Close()
	a := &acked{}
	per := max(1, count/5)
	for start := 0; start < count; start += per {
		if err := cl.BeginTransaction(); err != nil {
			return err
		}
		for i := start; i < min(count, start+per); i++ {
			a.send(ctx, cl, topic, fmt.Sprintf("k%d", i%30), fmt.Sprintf("v%d", i))
		}
		if err := end(ctx, cl, kgo.TryCommit); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
	}
	a.print()
	return readTxn(ctx, bootstrap, topic, "committed", kgo.ReadCommitted(), count)
}

func txnAbort(ctx context.Context, bootstrap, topic string, count int) error {
	n := count / 3
	cl, err := txnClient(bootstrap, topic+"-tx")
	if err != nil {
		return err
	}
	defer cl.Close()
	a := &acked{}
	for _, step := range []struct {
		letter string
		commit kgo.TransactionEndTry
	}{{"a", kgo.TryCommit}, {"b", kgo.TryAbort}, {"c", kgo.TryCommit}} {
		if err := cl.BeginTransaction(); err != nil {
			return err
		}
		a.sendAll(ctx, cl, topic, step.letter, n)
		if err := end(ctx, cl, step.commit); err != nil {
			return fmt.Errorf("end of transaction %s: %w", step.letter, err)
		}
	}
	a.print()
	if err := readTxn(ctx, bootstrap, topic, "committed", kgo.ReadCommitted(), 2*n); err != nil {
		return err
	}
	return readTxn(ctx, bootstrap, topic, "uncommitted", kgo.ReadUncommitted(), 3*n)
}

func txnOpen(ctx context.Context, bootstrap, topic string, count int) error {
	n := count / 2
	cl, err := txnClient(bootstrap, topic+"-tx")
	if err != nil {
		return err
	}
	defer cl.Close()
	a := &acked{}
	if err := cl.BeginTransaction(); err != nil {
		return err
	}
	a.sendAll(ctx, cl, topic, "a", n)
	if err := end(ctx, cl, kgo.TryCommit); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if err := cl.BeginTransaction(); err != nil {
		return err
	}
	a.sendAll(ctx, cl, topic, "b", n)
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	a.print()
	// ListOffsets at read_committed (the last stable offset) and at read_uncommitted.
	admin := kadm.NewClient(cl)
	lso, err := admin.ListCommittedOffsets(ctx, topic)
	if err != nil {
		return fmt.Errorf("list committed offsets: %w", err)
	}
	hw, err := admin.ListEndOffsets(ctx, topic)
	if err != nil {
		return fmt.Errorf("list end offsets: %w", err)
	}
	parts := make([]int, 0, 3)
	for p := range hw[topic] {
		parts = append(parts, int(p))
	}
	sort.Ints(parts)
	for _, p := range parts {
		l, h := lso[topic][int32(p)], hw[topic][int32(p)]
		if l.Err != nil || h.Err != nil {
			fmt.Printf("E list offsets %d: %v %v\n", p, l.Err, h.Err)
			continue
		}
		fmt.Printf("L %d %d %d\n", p, l.Offset, h.Offset)
	}
	if err := readTxn(ctx, bootstrap, topic, "committed", kgo.ReadCommitted(), n); err != nil {
		return err
	}
	if err := readTxn(ctx, bootstrap, topic, "uncommitted", kgo.ReadUncommitted(), 2*n); err != nil {
		return err
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	fmt.Println("X commit ok")
	return readTxn(ctx, bootstrap, topic, "after", kgo.ReadCommitted(), 2*n)
}

// txnFence: franz-go sends InitProducerId with a transaction's first record, not at start,
// so the second producer fences the first when its first records go out.
func txnFence(ctx context.Context, bootstrap, topic string, count int) error {
	n := count / 2
	first, err := txnClient(bootstrap, topic+"-tx")
	if err != nil {
		return err
	}
	defer first.Close()
	a := &acked{}
	if err := first.BeginTransaction(); err != nil {
		return err
	}
	a.sendAll(ctx, first, topic, "f", n)
	if err := first.Flush(ctx); err != nil {
		return err
	}
	second, err := txnClient(bootstrap, topic+"-tx")
	if err != nil {
		return err
	}
	defer second.Close()
	if err := second.BeginTransaction(); err != nil {
		return err
	}
	a.sendAll(ctx, second, topic, "g", n)
	if err := second.Flush(ctx); err != nil {
		return err
	}
	fmt.Println("X second-init ok")
	outcome := "ok"
	if err := first.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte("k0"), Value: []byte("late")}).FirstErr(); err != nil {
		outcome = errName(err)
	}
	fmt.Println("X send " + outcome)
	if err := first.EndTransaction(ctx, kgo.TryCommit); err != nil {
		fmt.Println("X commit " + errName(err))
		// What an application does after a failed commit: abort.
		outcome = "ok"
		if err := first.EndTransaction(ctx, kgo.TryAbort); err != nil {
			outcome = errName(err)
		}
		fmt.Println("X abort " + outcome)
	} else {
		fmt.Println("X commit ok")
	}
	if err := second.EndTransaction(ctx, kgo.TryCommit); err != nil {
		return fmt.Errorf("second producer's commit: %w", err)
	}
	a.print()
	if err := readTxn(ctx, bootstrap, topic, "committed", kgo.ReadCommitted(), n); err != nil {
		return err
	}
	return readTxn(ctx, bootstrap, topic, "uncommitted", kgo.ReadUncommitted(), 2*n)
}

// txnConsumeTransformProduce reads INPUT (COUNT records) in GROUP and writes "t-" + value
// to OUTPUT, each poll in a transaction that also commits the group's offsets (the session
// sends them with TxnOffsetCommit); the third is aborted after its records were acknowledged,
// and the session rewinds to the committed offsets. Ends when every input offset is committed.
func txnConsumeTransformProduce(ctx context.Context, bootstrap, input, output, group string, count int) error {
	s, err := kgo.NewGroupTransactSession(append([]kgo.Opt{
		kgo.SeedBrokers(bootstrap),
		kgo.TransactionalID(group + "-tx"),
		kgo.TransactionTimeout(txnTimeout),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(5 * time.Millisecond),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(input),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RequireStableFetchOffsets(),
	}, logOpts()...)...)
	if err != nil {
		return err
	}
	done := map[int32]int64{}
	total := func() (sum int64) {
		for _, o := range done {
			sum += o
		}
		return sum
	}
	batches, aborted := 0, 0
	deadline := time.Now().Add(90 * time.Second)
	for total() < int64(count) && time.Now().Before(deadline) {
		pctx, pcancel := context.WithTimeout(ctx, 500*time.Millisecond)
		fetches := s.PollRecords(pctx, 100)
		pcancel()
		for _, fe := range fetches.Errors() {
			if !errors.Is(fe.Err, context.DeadlineExceeded) && !errors.Is(fe.Err, context.Canceled) {
				fmt.Printf("E consume %s %d: %v\n", fe.Topic, fe.Partition, fe.Err)
			}
		}
		records := fetches.Records()
		if len(records) == 0 {
			continue
		}
		if err := s.Begin(); err != nil {
			s.Close()
			return err
		}
		out := make([]*kgo.Record, 0, len(records))
		for _, r := range records {
			out = append(out, &kgo.Record{Topic: output, Key: r.Key, Value: append([]byte("t-"), r.Value...)})
		}
		if err := s.ProduceSync(ctx, out...).FirstErr(); err != nil {
			fmt.Printf("E produce: %v\n", err)
		}
		batches++
		if batches == 3 {
			if _, err := s.End(ctx, kgo.TryAbort); err != nil {
				s.Close()
				return fmt.Errorf("abort: %w", err)
			}
			aborted += len(records)
			fmt.Printf("X aborted %d\n", len(records))
			continue
		}
		committed, err := s.End(ctx, kgo.TryCommit)
		if err != nil {
			s.Close()
			return fmt.Errorf("commit: %w", err)
		}
		if !committed { // the group rebalanced: the session aborted, and rewound
			fmt.Printf("X not-committed %d\n", len(records))
			continue
		}
		for _, r := range records {
			done[r.Partition] = max(done[r.Partition], r.Offset+1)
		}
		fmt.Printf("X committed %d\n", len(records))
	}
	s.Close()
	if err := readTxn(ctx, bootstrap, output, "committed", kgo.ReadCommitted(), count); err != nil {
		return err
	}
	return readTxn(ctx, bootstrap, output, "uncommitted", kgo.ReadUncommitted(), count+aborted)
}
