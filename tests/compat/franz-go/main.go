// franz-go (github.com/twmb/franz-go, versions pinned in go.mod) in Weir's compatibility
// scenario. Built by tests/compat/install with modules from the Go module proxy, kept in
// the suite's cache (later builds work offline):
//
//	go build -o <cache>/franz-go-compat .
//	franz-go-compat BOOTSTRAP TOPIC
//
// kadm for topics, offsets, configs (AlterTopicConfigs, which is IncrementalAlterConfigs),
// committed offsets and DeleteRecords; an idempotent kgo producer (acks=all, franz-go's default);
// kgo consumer groups for the groups (classic protocol: franz-go uses KIP-848 only when
// told to with ServerSideBalancer), ConsumePartitions for assigned partitions. franz-go's
// default balancer is cooperative-sticky, which group_split_cooperative uses; group_split
// uses range, the eager default of the other clients. Prints one JSON line per step for
// tests/compat/run.py; the scenario and its checks are the same as
// tests/compat/python/scenario.py's.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	partitions = 4
	records    = 10000
	baseTS     = int64(1700000000000)
	patience   = 60 * time.Second // a bound against hanging, not a timing assertion
	// retention.ms as alter_configs sets it, and Kafka's default (7 days)
	retentionMs        = "7200000"
	defaultRetentionMs = "604800000"
	logAppendTS        = int64(1000000) // log_append_time: the timestamp the producer sets
	clockSlackMs       = int64(1000)    // the append time may be this far outside the produce
	// small_fetch: 12 records of 300,000 bytes in each of 3 partitions, read with a total
	// fetch limit of 1,000,000 bytes and a per-partition limit of 20,000,000.
	bigPartitions          = 3
	bigRecords             = 12
	bigSize                = 300000
	fetchMaxBytes          = 1000000
	partitionFetchMaxBytes = 20000000
	// delete_records: 10 records in each of 2 partitions; partition 0 loses those before
	// offset 4, partition 1 everything (-1 is the high watermark); offset 11 of partition 0
	// is past it.
	drPartitions  = 2
	drRecords     = 10
	drBefore      = 4
	highWatermark = -1
)

var (
	bootstrap, topic string
	adm              *kadm.Client
	acks             = map[int][2]int64{}
	seen             = map[int][2]int64{}
	committed        = map[int32]int64{}
)

type notSupported struct{ msg string }

func (e notSupported) Error() string { return e.msg }

func check(cond bool, format string, args ...interface{}) {
	if !cond {
		panic(fmt.Errorf(format, args...))
	}
}

func must(err error, what string) {
	if err != nil {
		panic(fmt.Errorf("%s: %v", what, err))
	}
}

func step(name string, body func()) {
	fmt.Fprintf(os.Stderr, "== %s\n", name)
	t0 := time.Now()
	msg := map[string]interface{}{"step": name}
	func() {
		defer func() {
			if r := recover(); r != nil {
				var ns notSupported
				if err, ok := r.(error); ok && errors.As(err, &ns) {
					msg["skip"] = ns.msg
					return
				}
				fmt.Fprintf(os.Stderr, "   failed: %v\n", r)
				msg["ok"] = false
				msg["error"] = fmt.Sprint(r)
			}
		}()
		body()
		msg["ok"] = true
	}()
	line, _ := json.Marshal(msg)
	fmt.Println(string(line))
	fmt.Fprintf(os.Stderr, "   %s: %.1f s\n", name, time.Since(t0).Seconds())
}

// ctx bounds one call against hanging.
func ctx() context.Context {
	c, cancel := context.WithTimeout(context.Background(), patience)
	time.AfterFunc(patience, cancel)
	return c
}

// recordIndex keys a small_fetch record's index j in its Context.
type recordIndex struct{}

func key(i int) []byte { return []byte(fmt.Sprintf("key-%d", i)) }

func value(i int) []byte {
	v := []byte(fmt.Sprintf("value-%d-", i))
	for j := 0; j < i%200; j++ {
		v = append(v, byte((i*31+j)%256))
	}
	return v
}

// bigValue is small_fetch's record j of a partition: bigSize bytes, distinct per record.
func bigValue(partition, j int) []byte {
	v := make([]byte, bigSize)
	n := copy(v, fmt.Sprintf("big-%d-%d-", partition, j))
	start := (partition*bigRecords + j) % 256
	for k := n; k < bigSize; k++ {
		v[k] = byte((start + k - n) % 256)
	}
	return v
}

func opts(extra ...kgo.Opt) []kgo.Opt {
	return append([]kgo.Opt{
		kgo.SeedBrokers(bootstrap),
		kgo.ClientID("weir-compat-franz-go"),
		kgo.WithLogger(kgo.BasicLogger(os.Stderr, kgo.LogLevelWarn, nil)),
	}, extra...)
}

func newClient(extra ...kgo.Opt) *kgo.Client {
	cl, err := kgo.NewClient(opts(extra...)...)
	must(err, "new client")
	return cl
}

func verify(r *kgo.Record) int {
	k := string(r.Key)
	check(strings.HasPrefix(k, "key-"), "unexpected key %q", k)
	i, _ := strconv.Atoi(k[4:])
	check(bytes.Equal(r.Value, value(i)), "record %d: value differs", i)
	var hs []string
	for _, h := range r.Headers {
		hs = append(hs, h.Key+"="+string(h.Value))
	}
	want := []string{fmt.Sprintf("seq=%d", i), "origin=weir-compat"}
	check(fmt.Sprint(hs) == fmt.Sprint(want), "record %d: headers %v", i, hs)
	ts := r.Timestamp.UnixMilli()
	check(ts == baseTS+int64(i), "record %d: timestamp %d, sent %d", i, ts, baseTS+int64(i))
	if a, ok := acks[i]; ok {
		check(a[0] == int64(r.Partition) && a[1] == r.Offset, "record %d read at %d/%d, producer was acked %v", i, r.Partition, r.Offset, a)
	}
	return i
}

// poll waits up to a second for at most 1,000 records (as the other clients' programs
// poll); a fetch error other than that wait's end fails.
func poll(cl *kgo.Client) []*kgo.Record {
	c, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	fs := cl.PollRecords(c, 1000)
	fs.EachError(func(t string, p int32, err error) {
		if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
			panic(fmt.Errorf("fetch %s/%d: %v", t, p, err))
		}
	})
	return fs.Records()
}

// readAll polls cl until count records were read; returns them in the order read.
func readAll(cl *kgo.Client, count int, what string) []*kgo.Record {
	var out []*kgo.Record
	deadline := time.Now().Add(patience)
	for len(out) < count {
		check(time.Now().Before(deadline), "%s: read %d of %d records", what, len(out), count)
		out = append(out, poll(cl)...)
	}
	return out
}

func produce(idempotent bool) (got map[int][2]int64, err error) {
	defer func() {
		if r := recover(); r != nil {
			got, err = nil, fmt.Errorf("%v", r)
		}
	}()
	extra := []kgo.Opt{kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(5 * time.Millisecond)}
	if !idempotent {
		extra = append(extra, kgo.DisableIdempotentWrite())
	}
	cl := newClient(extra...)
	defer cl.Close()
	got = map[int][2]int64{}
	var mu sync.Mutex
	var errs []string
	c := ctx()
	for i := 0; i < records; i++ {
		i := i
		r := &kgo.Record{Topic: topic, Key: key(i), Value: value(i), Timestamp: time.UnixMilli(baseTS + int64(i)),
			Headers: []kgo.RecordHeader{{Key: "seq", Value: []byte(strconv.Itoa(i))}, {Key: "origin", Value: []byte("weir-compat")}}}
		cl.Produce(c, r, func(r *kgo.Record, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Sprintf("record %d: %v", i, err))
			} else {
				got[i] = [2]int64{int64(r.Partition), r.Offset}
			}
		})
	}
	must(cl.Flush(c), "flush")
	mu.Lock()
	defer mu.Unlock()
	if len(errs) > 0 {
		return nil, fmt.Errorf("%d send errors, first: %s", len(errs), errs[0])
	}
	return got, nil
}

func checkAcks(got map[int][2]int64) {
	check(len(got) == records, "%d of %d records acknowledged", len(got), records)
	byPart := map[int64][]int64{}
	for _, po := range got {
		byPart[po[0]] = append(byPart[po[0]], po[1])
	}
	check(len(byPart) == partitions, "keys landed in %d partitions", len(byPart))
	for p, offs := range byPart {
		sort.Slice(offs, func(a, b int) bool { return offs[a] < offs[b] })
		for j, o := range offs {
			check(o == int64(j), "partition %d: acked offsets are not dense from 0", p)
		}
	}
}

// groupMember is a kgo client in a consumer group of the scenario's topic, starting where
// the group committed or else at the earliest offset, auto-commit off; it tracks its
// assignment.
type groupMember struct {
	cl       *kgo.Client
	mu       sync.Mutex
	assigned map[int32]bool
}

func newGroupMember(group string, balancer kgo.GroupBalancer) *groupMember {
	m := &groupMember{assigned: map[int32]bool{}}
	update := func(add bool) func(context.Context, *kgo.Client, map[string][]int32) {
		return func(_ context.Context, _ *kgo.Client, ps map[string][]int32) {
			m.mu.Lock()
			defer m.mu.Unlock()
			for _, p := range ps[topic] {
				if add {
					m.assigned[p] = true
				} else {
					delete(m.assigned, p)
				}
			}
		}
	}
	m.cl = newClient(kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.Balancers(balancer),
		kgo.OnPartitionsAssigned(update(true)), kgo.OnPartitionsRevoked(update(false)), kgo.OnPartitionsLost(update(false)))
	return m
}

func (m *groupMember) assignment() map[int32]bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[int32]bool{}
	for p := range m.assigned {
		out[p] = true
	}
	return out
}

func committedOffsets(group string) map[int32]int64 {
	res, err := adm.FetchOffsets(ctx(), group)
	must(err, "fetch offsets")
	out := map[int32]int64{}
	for p := int32(0); p < partitions; p++ {
		if o, ok := res.Lookup(topic, p); ok {
			must(o.Err, fmt.Sprintf("committed offset of partition %d", p))
			if o.At >= 0 {
				out[p] = o.At
			}
		}
	}
	return out
}

func topicConfigs(t string) map[string]string {
	rcs, err := adm.DescribeTopicConfigs(ctx(), t)
	must(err, "describe topic configs")
	out := map[string]string{}
	for _, rc := range rcs {
		check(rc.Name == t, "describe configs answered for %q", rc.Name)
		must(rc.Err, "describe configs")
		for _, c := range rc.Configs {
			if c.Value != nil {
				out[c.Key] = *c.Value
			}
		}
	}
	return out
}

func policies(configs map[string]string) map[string]bool {
	out := map[string]bool{}
	for _, p := range strings.Split(configs["cleanup.policy"], ",") {
		out[p] = true
	}
	return out
}

// alterConfigs changes the topic's configs with IncrementalAlterConfigs; the error is
// the response's for the topic.
func alterConfigs(changes ...kadm.AlterConfig) error {
	res, err := adm.AlterTopicConfigs(ctx(), changes, topic)
	must(err, "alter topic configs")
	check(len(res) == 1 && res[0].Name == topic, "alter configs answered for %v", res)
	if res[0].Err != nil {
		return fmt.Errorf("%w: %s", res[0].Err, res[0].ErrMessage)
	}
	return nil
}

func str(s string) *string { return &s }

// deleteRecords deletes the records of t before each partition's offset with kadm; it
// returns the answer for each partition.
func deleteRecords(t string, offsets map[int32]int64) map[int32]kadm.DeleteRecordsResponse {
	req := kadm.Offsets{}
	for p, o := range offsets {
		req.Add(kadm.Offset{Topic: t, Partition: p, At: o})
	}
	res, err := adm.DeleteRecords(ctx(), req)
	must(err, "delete records")
	out := map[int32]kadm.DeleteRecordsResponse{}
	for p := range offsets {
		r, ok := res.Lookup(t, p)
		check(ok, "delete records answered for no partition %d", p)
		out[p] = r
	}
	return out
}

// startEnd lists the start (earliest) and end (latest) offset of each partition of t.
func startEnd(t string, n int32) (map[int32]int64, map[int32]int64) {
	starts, err := adm.ListStartOffsets(ctx(), t)
	must(err, "earliest offsets")
	ends, err := adm.ListEndOffsets(ctx(), t)
	must(err, "latest offsets")
	s, e := map[int32]int64{}, map[int32]int64{}
	for p := int32(0); p < n; p++ {
		o, ok := starts.Lookup(t, p)
		check(ok, "earliest offsets: no answer for partition %d", p)
		must(o.Err, fmt.Sprintf("earliest offset of partition %d", p))
		s[p] = o.Offset
		o, ok = ends.Lookup(t, p)
		check(ok, "latest offsets: no answer for partition %d", p)
		must(o.Err, fmt.Sprintf("latest offset of partition %d", p))
		e[p] = o.Offset
	}
	return s, e
}

func createTopic(t string, n int32, configs map[string]*string) {
	res, err := adm.CreateTopic(ctx(), n, 1, configs, t)
	must(err, "create topic")
	must(res.Err, "create topic "+t)
	deadline := time.Now().Add(patience)
	for !topicListed(t) {
		check(time.Now().Before(deadline), "%s not listed after create", t)
		time.Sleep(200 * time.Millisecond)
	}
}

func topicListed(t string) bool {
	td, err := adm.ListTopics(ctx())
	must(err, "list topics")
	d, ok := td[t]
	return ok && d.Err == nil
}

func groupSplit(balancer kgo.GroupBalancer, name string) {
	group := topic + "-split-" + name
	a := newGroupMember(group, balancer)
	defer a.cl.Close()
	deadline := time.Now().Add(patience)
	for len(a.assignment()) < partitions {
		check(time.Now().Before(deadline), "a lone consumer got %v", a.assignment())
		poll(a.cl)
	}
	b := newGroupMember(group, balancer)
	defer b.cl.Close()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	defer func() { close(stop); wg.Wait() }()
	for _, m := range []*groupMember{a, b} {
		wg.Add(1)
		go func(m *groupMember) {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
					m.cl.PollFetches(pollCtx(stop))
				}
			}
		}(m)
	}
	stable := 0
	for stable < 5 {
		sa, sb := a.assignment(), b.assignment()
		check(time.Now().Before(deadline), "no split: a has %v, b has %v", sa, sb)
		all := map[int32]bool{}
		overlap := false
		for p := range sa {
			all[p] = true
		}
		for p := range sb {
			overlap = overlap || sa[p]
			all[p] = true
		}
		if len(sa) > 0 && len(sb) > 0 && !overlap && len(all) == partitions {
			stable++
		} else {
			stable = 0
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// pollCtx ends after 200 ms or when stop is closed.
func pollCtx(stop chan struct{}) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	go func() {
		select {
		case <-stop:
		case <-c.Done():
		}
		cancel()
	}()
	return c
}

func main() {
	bootstrap, topic = os.Args[1], os.Args[2]
	admClient := newClient()
	adm = kadm.NewClient(admClient)
	parts := []int32{0, 1, 2, 3}

	step("create_topic", func() {
		createTopic(topic, partitions, nil)
	})

	step("produce", func() {
		got, err := produce(true)
		var fallback string
		if err != nil {
			fallback = fmt.Sprintf("idempotent produce failed: %v", err)
			fmt.Fprintf(os.Stderr, "   %s; producing without idempotence for the steps after this one\n", fallback)
			got, err = produce(false)
			must(err, "produce without idempotence")
		}
		checkAcks(got)
		acks = got
		check(fallback == "", "%s (without idempotence all 10,000 were acknowledged)", fallback)
	})

	step("consume_commit", func() {
		group := topic + "-g"
		m := newGroupMember(group, kgo.RangeBalancer())
		defer m.cl.Close()
		deadline := time.Now().Add(patience)
		for len(seen) < records/2 {
			check(time.Now().Before(deadline), "read %d records, wanted %d", len(seen), records/2)
			for _, r := range poll(m.cl) {
				i := verify(r)
				_, dup := seen[i]
				check(!dup, "record %d delivered twice", i)
				seen[i] = [2]int64{int64(r.Partition), r.Offset}
			}
		}
		next := map[int32]int64{}
		for _, po := range seen {
			if po[1]+1 > next[int32(po[0])] {
				next[int32(po[0])] = po[1] + 1
			}
		}
		commit := map[int32]kgo.EpochOffset{}
		for p, o := range next {
			commit[p] = kgo.EpochOffset{Epoch: -1, Offset: o}
		}
		var commitErr error
		m.cl.CommitOffsetsSync(ctx(), map[string]map[int32]kgo.EpochOffset{topic: commit},
			func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
				if err != nil {
					commitErr = err
					return
				}
				for _, t := range resp.Topics {
					for _, p := range t.Partitions {
						if e := kerr.ErrorForCode(p.ErrorCode); e != nil && commitErr == nil {
							commitErr = fmt.Errorf("partition %d: %v", p.Partition, e)
						}
					}
				}
			})
		must(commitErr, "commit")
		back := committedOffsets(group)
		check(fmt.Sprint(back) == fmt.Sprint(next), "committed offsets read back %v, committed %v", back, next)
		committed = next
	})

	step("resume", func() {
		check(len(committed) > 0, "nothing was committed by consume_commit")
		first := map[int32]int64{}
		again := map[int][2]int64{}
		m := newGroupMember(topic+"-g", kgo.RangeBalancer())
		defer m.cl.Close()
		deadline := time.Now().Add(patience)
		for len(seen)+len(again) < records {
			check(time.Now().Before(deadline), "after restart read %d records, %d remained", len(again), records-len(seen))
			for _, r := range poll(m.cl) {
				if _, ok := first[r.Partition]; !ok {
					first[r.Partition] = r.Offset
				}
				i := verify(r)
				_, before := seen[i]
				check(!before, "record %d was read before the commit and again after restart", i)
				_, dup := again[i]
				check(!dup, "record %d delivered twice after restart", i)
				again[i] = [2]int64{int64(r.Partition), r.Offset}
			}
		}
		for p, off := range first {
			check(off == committed[p], "partition %d: restarted consumer began at offset %d, committed %d", p, off, committed[p])
		}
		for i, po := range again {
			seen[i] = po
		}
	})

	step("async_commits", func() {
		panic(notSupported{"franz-go has no pipelined commits: Client.CommitOffsets returns before its commit is " +
			"done, but it waits for any prior in-flight commit to complete before issuing the next (kgo " +
			"consumer_group.go: 'ensures absolute ordering of commit requests'), so one OffsetCommit is in flight " +
			"at a time; and it commits only for a group member, not for assigned partitions"})
	})

	step("list_offsets", func() {
		placed := seen
		if len(placed) != records {
			placed = acks
		}
		check(len(placed) == records, "only %d records known", len(placed))
		counts := map[int32]int64{}
		byPart := map[int32][][2]int64{}
		for i, po := range placed {
			counts[int32(po[0])]++
			byPart[int32(po[0])] = append(byPart[int32(po[0])], [2]int64{po[1], int64(i)})
		}
		lookup := func(l kadm.ListedOffsets, err error, p int32, what string) int64 {
			must(err, what)
			o, ok := l.Lookup(topic, p)
			check(ok, "%s: no answer for partition %d", what, p)
			must(o.Err, fmt.Sprintf("%s of partition %d", what, p))
			return o.Offset
		}
		starts, serr := adm.ListStartOffsets(ctx(), topic)
		ends, eerr := adm.ListEndOffsets(ctx(), topic)
		// kadm answers a timestamp after every record with the end offset (its documented
		// substitute for Kafka's -1).
		after, aerr := adm.ListOffsetsAfterMilli(ctx(), baseTS+records+1000, topic)
		for _, p := range parts {
			earliest := lookup(starts, serr, p, "earliest offset")
			check(earliest == 0, "partition %d: earliest offset %d", p, earliest)
			latest := lookup(ends, eerr, p, "latest offset")
			check(latest == counts[p], "partition %d: latest offset %d, expected %d", p, latest, counts[p])
			rows := byPart[p]
			sort.Slice(rows, func(a, b int) bool { return rows[a][0] < rows[b][0] })
			mid := rows[len(rows)/2]
			l, err := adm.ListOffsetsAfterMilli(ctx(), baseTS+mid[1], topic)
			found := lookup(l, err, p, "offset by timestamp")
			check(found == mid[0], "partition %d: offset for timestamp %d is %d, expected %d", p, baseTS+mid[1], found, mid[0])
			end := lookup(after, aerr, p, "offset by timestamp")
			check(end == counts[p], "partition %d: a timestamp after every record gave %d, expected the end offset %d", p, end, counts[p])
		}
	})

	step("describe_configs", func() {
		configs := topicConfigs(topic)
		policy, ok := configs["cleanup.policy"]
		check(ok, "cleanup.policy missing from %d entries", len(configs))
		check(policy == "delete", "cleanup.policy is %q", policy)
	})

	step("alter_configs", func() {
		must(alterConfigs(kadm.AlterConfig{Op: kadm.SetConfig, Name: "retention.ms", Value: str(retentionMs)},
			kadm.AlterConfig{Op: kadm.AppendConfig, Name: "cleanup.policy", Value: str("compact")}), "alter configs")
		c := topicConfigs(topic)
		check(c["retention.ms"] == retentionMs, "after SET retention.ms=%s it is %q", retentionMs, c["retention.ms"])
		check(policies(c)["delete"] && policies(c)["compact"], "after APPEND cleanup.policy=compact it is %q", c["cleanup.policy"])
		err := alterConfigs(kadm.AlterConfig{Op: kadm.SetConfig, Name: "retention.ms", Value: str("soon")})
		check(err != nil, "SET retention.ms=soon was accepted")
		check(errors.Is(err, kerr.InvalidConfig), "SET retention.ms=soon failed with %v, expected INVALID_CONFIG", err)
		c = topicConfigs(topic)
		check(c["retention.ms"] == retentionMs, "after the refused SET retention.ms is %q, was %s", c["retention.ms"], retentionMs)
		must(alterConfigs(kadm.AlterConfig{Op: kadm.DeleteConfig, Name: "retention.ms"}), "delete retention.ms")
		c = topicConfigs(topic)
		check(c["retention.ms"] == defaultRetentionMs, "after DELETE retention.ms it is %q, expected the default %s",
			c["retention.ms"], defaultRetentionMs)
		check(policies(c)["delete"] && policies(c)["compact"], "after DELETE retention.ms cleanup.policy is %q", c["cleanup.policy"])
	})

	step("log_append_time", func() {
		lat := topic + "-lat"
		createTopic(lat, 1, map[string]*string{"message.timestamp.type": str("LogAppendTime")})
		p := newClient(kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		before := time.Now().UnixMilli()
		r := &kgo.Record{Topic: lat, Partition: 0, Key: []byte("lat"), Value: []byte("log-append-time"),
			Timestamp: time.UnixMilli(logAppendTS)}
		err := p.ProduceSync(ctx(), r).FirstErr()
		after := time.Now().UnixMilli()
		p.Close()
		must(err, "produce")
		check(r.Partition == 0 && r.Offset == 0, "the record was acknowledged at %d/%d, expected 0/0", r.Partition, r.Offset)
		// franz-go leaves a produced record's Timestamp as sent: it does not read the
		// produce response's log_append_time, so there is no acknowledged time to compare.
		c := newClient(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{lat: {0: kgo.NewOffset().AtStart()}}))
		defer c.Close()
		got := readAll(c, 1, lat)[0]
		check(got.Attrs.TimestampType() == 1, "record read with timestamp type %d, expected LogAppendTime (1)", got.Attrs.TimestampType())
		ts := got.Timestamp.UnixMilli()
		check(ts != logAppendTS, "record read with the producer's timestamp %d, not the append time", logAppendTS)
		check(before-clockSlackMs <= ts && ts <= after+clockSlackMs, "record read with timestamp %d, produced between %d and %d", ts, before, after)
	})

	step("small_fetch", func() {
		big := topic + "-big"
		createTopic(big, bigPartitions, nil)
		// Batches of three records (ProducerBatchMaxBytes 1,000,000; Kafka's max.message.bytes
		// is 1 MiB); a request carries a batch for each partition. Uncompressed (franz-go's
		// default is snappy), so the batches are as large on the wire as the other clients'.
		p := newClient(kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.ProducerBatchMaxBytes(1000000), kgo.ProducerLinger(100*time.Millisecond),
			kgo.ProducerBatchCompression(kgo.NoCompression()))
		var rs []*kgo.Record
		for j := 0; j < bigRecords; j++ {
			for part := 0; part < bigPartitions; part++ {
				rs = append(rs, &kgo.Record{Topic: big, Partition: int32(part), Key: []byte(fmt.Sprintf("big-%d-%d", part, j)),
					Value: bigValue(part, j), Context: context.WithValue(context.Background(), recordIndex{}, j)})
			}
		}
		err := p.ProduceSync(ctx(), rs...).FirstErr()
		p.Close()
		must(err, "produce")
		for _, r := range rs {
			j := r.Context.Value(recordIndex{}).(int)
			check(r.Offset == int64(j), "record %s was acknowledged at %d/%d", r.Key, r.Partition, r.Offset)
		}
		// franz-go clamps FetchMaxPartitionBytes to FetchMaxBytes (kgo config.go), so the
		// requests ask for at most 1,000,000 bytes per partition too.
		offsets := map[int32]kgo.Offset{}
		for part := int32(0); part < bigPartitions; part++ {
			offsets[part] = kgo.NewOffset().AtStart()
		}
		c := newClient(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{big: offsets}),
			kgo.FetchMaxBytes(fetchMaxBytes), kgo.FetchMaxPartitionBytes(partitionFetchMaxBytes))
		defer c.Close()
		got := readAll(c, bigRecords*bigPartitions, fmt.Sprintf("%s with FetchMaxBytes %d", big, fetchMaxBytes))
		for part := int32(0); part < bigPartitions; part++ {
			var offs []int64
			var mine []*kgo.Record
			for _, r := range got {
				if r.Partition == part {
					offs = append(offs, r.Offset)
					mine = append(mine, r)
				}
			}
			want := make([]int64, bigRecords)
			for j := range want {
				want[j] = int64(j)
			}
			check(fmt.Sprint(offs) == fmt.Sprint(want), "partition %d: read offsets %v, expected 0..%d", part, offs, bigRecords-1)
			for j, r := range mine {
				check(len(r.Value) == bigSize, "partition %d offset %d: %d bytes, sent %d", part, j, len(r.Value), bigSize)
				check(bytes.Equal(r.Value, bigValue(int(part), j)), "partition %d offset %d: value differs from the one sent", part, j)
			}
		}
	})

	step("delete_records", func() {
		dr := topic + "-dr"
		createTopic(dr, drPartitions, nil)
		p := newClient(kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		var rs []*kgo.Record
		for j := 0; j < drRecords; j++ {
			for part := 0; part < drPartitions; part++ {
				rs = append(rs, &kgo.Record{Topic: dr, Partition: int32(part), Key: []byte(fmt.Sprintf("dr-%d-%d", part, j)),
					Value: []byte(fmt.Sprintf("dr-value-%d-%d", part, j)), Context: context.WithValue(context.Background(), recordIndex{}, j)})
			}
		}
		err := p.ProduceSync(ctx(), rs...).FirstErr()
		p.Close()
		must(err, "produce")
		for _, r := range rs {
			j := r.Context.Value(recordIndex{}).(int)
			check(r.Offset == int64(j), "record %s was acknowledged at %d/%d", r.Key, r.Partition, r.Offset)
		}
		want := map[int32]int64{0: drBefore, 1: drRecords}
		for part, r := range deleteRecords(dr, map[int32]int64{0: drBefore, 1: highWatermark}) {
			must(r.Err, fmt.Sprintf("delete records of partition %d", part))
			check(r.LowWatermark == want[part], "DeleteRecords before offset %d of partition 0 and %d (the high watermark) of partition 1 answered partition %d with low watermark %d, expected %d",
				drBefore, highWatermark, part, r.LowWatermark, want[part])
		}
		starts, ends := startEnd(dr, drPartitions)
		check(fmt.Sprint(starts) == fmt.Sprint(want), "after DeleteRecords the earliest offsets are %v, expected %v", starts, want)
		check(fmt.Sprint(ends) == fmt.Sprint(map[int32]int64{0: drRecords, 1: drRecords}), "after DeleteRecords the latest offsets are %v, expected %d everywhere", ends, drRecords)
		c := newClient(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{dr: {0: kgo.NewOffset().AtStart()}}))
		got := readAll(c, drRecords-drBefore, dr+" partition 0 from the start")
		c.Close()
		var offs, wantOffs []int64
		for _, r := range got {
			offs = append(offs, r.Offset)
		}
		for j := int64(drBefore); j < drRecords; j++ {
			wantOffs = append(wantOffs, j)
		}
		check(fmt.Sprint(offs) == fmt.Sprint(wantOffs), "a consumer from the start of partition 0 read offsets %v, expected %d..%d", offs, drBefore, drRecords-1)
		for _, r := range got {
			check(r.Partition == 0 && string(r.Key) == fmt.Sprintf("dr-0-%d", r.Offset) && string(r.Value) == fmt.Sprintf("dr-value-0-%d", r.Offset),
				"partition %d offset %d: read %s=%s", r.Partition, r.Offset, r.Key, r.Value)
		}
		r := deleteRecords(dr, map[int32]int64{0: drRecords + 1})[0]
		check(errors.Is(r.Err, kerr.OffsetOutOfRange), "DeleteRecords before offset %d of partition 0 (high watermark %d) answered %v, expected OFFSET_OUT_OF_RANGE",
			drRecords+1, drRecords, r.Err)
		starts, _ = startEnd(dr, drPartitions)
		check(starts[0] == drBefore, "after the refused DeleteRecords partition 0's earliest offset is %d, was %d", starts[0], drBefore)
	})

	step("group_split", func() { groupSplit(kgo.RangeBalancer(), "range") })
	step("group_split_cooperative", func() { groupSplit(kgo.CooperativeStickyBalancer(), "coop") })

	step("delete_topic", func() {
		res, err := adm.DeleteTopics(ctx(), topic)
		must(err, "delete topic")
		for _, r := range res {
			must(r.Err, "delete topic "+r.Topic)
		}
		deadline := time.Now().Add(patience)
		for topicListed(topic) {
			check(time.Now().Before(deadline), "%s still listed after delete", topic)
			time.Sleep(200 * time.Millisecond)
		}
	})
	admClient.Close()
}
