// sarama-check drives Debian's Sarama (1.22) against a broker as an application would at one
// `config.Version`: cluster admin calls (topics, configs, partitions, groups), a synchronous
// producer per codec, a consumer group that marks every message and commits, the committed
// offsets read back, and a partition consumer.
// It prints one line per step and exits non-zero at the first step that fails.
//
// Usage: sarama-check -brokers host:port -version 0.10.2.0 -topic name
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/Shopify/sarama"
)

const perCodec = 10

func fail(step string, err error) {
	fmt.Printf("FAIL %s: %v\n", step, err)
	os.Exit(1)
}

func ok(step string, format string, args ...interface{}) {
	fmt.Printf("ok %s: %s\n", step, fmt.Sprintf(format, args...))
}

type groupHandler struct {
	mu   sync.Mutex
	seen map[string]string
	want int
	done chan struct{}
	once sync.Once
}

func (h *groupHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *groupHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *groupHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for m := range c.Messages() {
		h.mu.Lock()
		h.seen[string(m.Key)] = string(m.Value)
		n := len(h.seen)
		h.mu.Unlock()
		s.MarkMessage(m, "")
		if n >= h.want {
			h.once.Do(func() { close(h.done) })
		}
	}
	return nil
}

func main() {
	brokers := flag.String("brokers", "127.0.0.1:9092", "bootstrap brokers, comma-separated")
	versionFlag := flag.String("version", sarama.MaxVersion.String(), "Sarama config.Version")
	topic := flag.String("topic", "sarama-check", "topic to create, use and delete")
	flag.Parse()
	addrs := strings.Split(*brokers, ",")
	version, err := sarama.ParseKafkaVersion(*versionFlag)
	if err != nil {
		fail("version", err)
	}
	cfg := sarama.NewConfig()
	cfg.Version = version
	cfg.ClientID = "sarama-check"
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Partitioner = sarama.NewHashPartitioner
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Return.Errors = true
	cfg.Metadata.Retry.Backoff = 200 * time.Millisecond

	admin, err := sarama.NewClusterAdmin(addrs, cfg)
	if err != nil {
		fail("admin", err)
	}
	if err := admin.CreateTopic(*topic, &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 1}, false); err != nil {
		fail("CreateTopic", err)
	}
	ok("CreateTopic", "%s with 3 partitions", *topic)
	if version.IsAtLeast(sarama.V0_11_0_0) {
		topics, err := admin.ListTopics()
		if err != nil {
			fail("ListTopics", err)
		}
		if d, found := topics[*topic]; !found || d.NumPartitions != 3 {
			fail("ListTopics", fmt.Errorf("%s missing or wrong: %+v", *topic, d))
		}
		ok("ListTopics", "%d topics, %s has 3 partitions", len(topics), *topic)
	}
	if version.IsAtLeast(sarama.V0_11_0_0) {
		retention := "3600000"
		if err := admin.AlterConfig(sarama.TopicResource, *topic, map[string]*string{"retention.ms": &retention}, false); err != nil {
			fail("AlterConfig", err)
		}
		entries, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: *topic})
		if err != nil {
			fail("DescribeConfig", err)
		}
		found := false
		for _, e := range entries {
			found = found || (e.Name == "retention.ms" && e.Value == retention)
		}
		if !found {
			fail("DescribeConfig", fmt.Errorf("retention.ms=%s not in %d entries", retention, len(entries)))
		}
		ok("AlterConfig/DescribeConfig", "retention.ms=%s", retention)
	}
	if version.IsAtLeast(sarama.V1_0_0_0) {
		if err := admin.CreatePartitions(*topic, 4, nil, false); err != nil {
			fail("CreatePartitions", err)
		}
		ok("CreatePartitions", "%s now has 4 partitions", *topic)
	}
	partitions := int32(3)
	if version.IsAtLeast(sarama.V1_0_0_0) {
		partitions = 4
	}
	md, err := admin.DescribeTopics([]string{*topic})
	if err != nil || len(md) != 1 || int32(len(md[0].Partitions)) != partitions {
		fail("DescribeTopics", fmt.Errorf("%v %+v", err, md))
	}
	ok("DescribeTopics", "%d partitions", partitions)
	brokersSeen, controller, err := admin.DescribeCluster()
	if err != nil || len(brokersSeen) == 0 {
		fail("DescribeCluster", fmt.Errorf("%v (%d brokers)", err, len(brokersSeen)))
	}
	ok("DescribeCluster", "%d brokers, controller %d", len(brokersSeen), controller)

	codecs := []sarama.CompressionCodec{sarama.CompressionNone, sarama.CompressionGZIP,
		sarama.CompressionSnappy, sarama.CompressionLZ4}
	if version.IsAtLeast(sarama.V2_1_0_0) {
		codecs = append(codecs, sarama.CompressionZSTD)
	}
	sent := map[string]string{}
	for _, codec := range codecs {
		pcfg := *cfg
		pcfg.Producer.Compression = codec
		p, err := sarama.NewSyncProducer(addrs, &pcfg)
		if err != nil {
			fail("producer", err)
		}
		var msgs []*sarama.ProducerMessage
		for i := 0; i < perCodec; i++ {
			k := fmt.Sprintf("%s-key-%d", codec, i)
			v := fmt.Sprintf("%s-value-%d-%s", codec, i, strings.Repeat("x", 40))
			sent[k] = v
			msgs = append(msgs, &sarama.ProducerMessage{Topic: *topic, Key: sarama.StringEncoder(k), Value: sarama.StringEncoder(v)})
		}
		if err := p.SendMessages(msgs); err != nil {
			fail("produce "+codec.String(), err)
		}
		p.Close()
		ok("produce", "%d records with codec %s", perCodec, codec)
	}

	group := "sarama-" + *topic
	if version.IsAtLeast(sarama.V0_10_2_0) {
		cg, err := sarama.NewConsumerGroup(addrs, group, cfg)
		if err != nil {
			fail("NewConsumerGroup", err)
		}
		h := &groupHandler{seen: map[string]string{}, want: len(sent), done: make(chan struct{})}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		go func() {
			for ctx.Err() == nil {
				if err := cg.Consume(ctx, []string{*topic}, h); err != nil && ctx.Err() == nil {
					fmt.Printf("consume error (retrying): %v\n", err)
					time.Sleep(200 * time.Millisecond)
				}
			}
		}()
		select {
		case <-h.done:
		case <-ctx.Done():
			fail("consumer group", fmt.Errorf("saw %d of %d records", len(h.seen), len(sent)))
		}
		cancel()
		if err := cg.Close(); err != nil {
			fail("consumer group close", err)
		}
		for k, v := range sent {
			if h.seen[k] != v {
				fail("consumer group", fmt.Errorf("key %s: got %q, sent %q", k, h.seen[k], v))
			}
		}
		ok("consumer group", "%s read all %d records", group, len(sent))
		all := []int32{}
		for p := int32(0); p < partitions; p++ {
			all = append(all, p)
		}
		offsets, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{*topic: all})
		if err != nil {
			fail("ListConsumerGroupOffsets", err)
		}
		var committed int64
		for _, p := range all {
			b := offsets.GetBlock(*topic, p)
			if b == nil || b.Err != sarama.ErrNoError {
				fail("ListConsumerGroupOffsets", fmt.Errorf("partition %d: %+v", p, b))
			}
			if b.Offset > 0 {
				committed += b.Offset
			}
		}
		if committed != int64(len(sent)) {
			fail("committed offsets", fmt.Errorf("sum %d, want %d", committed, len(sent)))
		}
		ok("committed offsets", "sum over partitions %d", committed)
		groups, err := admin.ListConsumerGroups()
		if err != nil {
			fail("ListConsumerGroups", err)
		}
		if _, found := groups[group]; !found {
			fail("ListConsumerGroups", fmt.Errorf("%s not in %v", group, groups))
		}
		described, err := admin.DescribeConsumerGroups([]string{group})
		if err != nil || len(described) != 1 || described[0].Err != sarama.ErrNoError {
			fail("DescribeConsumerGroups", fmt.Errorf("%v %+v", err, described))
		}
		ok("groups", "listed and described %s (state %s)", group, described[0].State)
	}

	consumer, err := sarama.NewConsumer(addrs, cfg)
	if err != nil {
		fail("consumer", err)
	}
	client, err := sarama.NewClient(addrs, cfg)
	if err != nil {
		fail("client", err)
	}
	read := map[string]string{}
	for p := int32(0); p < partitions; p++ {
		hw, err := client.GetOffset(*topic, p, sarama.OffsetNewest)
		if err != nil {
			fail("GetOffset", err)
		}
		if hw == 0 {
			continue
		}
		pc, err := consumer.ConsumePartition(*topic, p, sarama.OffsetOldest)
		if err != nil {
			fail("ConsumePartition", err)
		}
		timeout := time.After(30 * time.Second)
	loop:
		for {
			select {
			case m := <-pc.Messages():
				read[string(m.Key)] = string(m.Value)
				if m.Offset+1 >= hw {
					break loop
				}
			case e := <-pc.Errors():
				fail("ConsumePartition", e)
			case <-timeout:
				fail("ConsumePartition", fmt.Errorf("partition %d: timed out before offset %d", p, hw))
			}
		}
		pc.Close()
	}
	if len(read) != len(sent) {
		keys := []string{}
		for k := range read {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		fail("partition consumer", fmt.Errorf("read %d of %d: %v", len(read), len(sent), keys))
	}
	ok("partition consumer", "read all %d records from offset 0", len(read))
	consumer.Close()
	client.Close()
	if err := admin.DeleteTopic(*topic); err != nil {
		fail("DeleteTopic", err)
	}
	ok("DeleteTopic", "%s", *topic)
	admin.Close()
	fmt.Println("PASS")
}
