// confluent-check drives Debian's confluent-kafka-go (on the system librdkafka) against a
// broker: AdminClient CreateTopics and DescribeConfigs, a producer per codec with delivery
// reports, a consumer group reading every record and committing, and the committed offsets read
// back. One line per step; non-zero exit at the first failure.
//
// Usage: confluent-check -brokers host:port -topic name
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/confluentinc/confluent-kafka-go/kafka"
)

const perCodec = 10

func fail(step string, err error) {
	fmt.Printf("FAIL %s: %v\n", step, err)
	os.Exit(1)
}

func main() {
	brokers := flag.String("brokers", "127.0.0.1:9092", "bootstrap.servers")
	topic := flag.String("topic", "confluent-check", "topic to create and use")
	flag.Parse()

	admin, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": *brokers})
	if err != nil {
		fail("admin", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	res, err := admin.CreateTopics(ctx, []kafka.TopicSpecification{{Topic: *topic, NumPartitions: 2,
		ReplicationFactor: 1, Config: map[string]string{"retention.ms": "3600000"}}})
	if err != nil || res[0].Error.Code() != kafka.ErrNoError {
		fail("CreateTopics", fmt.Errorf("%v %v", err, res))
	}
	described, err := admin.DescribeConfigs(ctx, []kafka.ConfigResource{{Type: kafka.ResourceTopic, Name: *topic}})
	cancel()
	if err != nil || described[0].Config["retention.ms"].Value != "3600000" {
		fail("DescribeConfigs", fmt.Errorf("%v %+v", err, described))
	}
	admin.Close()
	fmt.Printf("ok admin: created %s, retention.ms described\n", *topic)

	sent := map[string]string{}
	for _, codec := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		p, err := kafka.NewProducer(&kafka.ConfigMap{"bootstrap.servers": *brokers,
			"compression.codec": codec, "linger.ms": 10, "acks": "all"})
		if err != nil {
			fail("producer", err)
		}
		for i := 0; i < perCodec; i++ {
			k := fmt.Sprintf("%s-key-%d", codec, i)
			v := fmt.Sprintf("%s-value-%d", codec, i)
			sent[k] = v
			err := p.Produce(&kafka.Message{TopicPartition: kafka.TopicPartition{Topic: topic,
				Partition: kafka.PartitionAny}, Key: []byte(k), Value: []byte(v)}, nil)
			if err != nil {
				fail("produce", err)
			}
		}
		delivered := 0
		timeout := time.After(30 * time.Second)
		for delivered < perCodec {
			select {
			case e := <-p.Events():
				if m, ok := e.(*kafka.Message); ok {
					if m.TopicPartition.Error != nil {
						fail("delivery "+codec, m.TopicPartition.Error)
					}
					delivered++
				}
			case <-timeout:
				fail("delivery "+codec, fmt.Errorf("%d of %d delivered", delivered, perCodec))
			}
		}
		p.Close()
		fmt.Printf("ok produce: %d records with codec %s\n", perCodec, codec)
	}

	group := "confluent-" + *topic
	c, err := kafka.NewConsumer(&kafka.ConfigMap{"bootstrap.servers": *brokers, "group.id": group,
		"auto.offset.reset": "earliest", "enable.auto.commit": false})
	if err != nil {
		fail("consumer", err)
	}
	if err := c.Subscribe(*topic, nil); err != nil {
		fail("subscribe", err)
	}
	seen := map[string]string{}
	deadline := time.Now().Add(60 * time.Second)
	for len(seen) < len(sent) && time.Now().Before(deadline) {
		m, err := c.ReadMessage(time.Second)
		if err != nil {
			continue
		}
		seen[string(m.Key)] = string(m.Value)
	}
	for k, v := range sent {
		if seen[k] != v {
			fail("consumer group", fmt.Errorf("key %s: got %q, sent %q", k, seen[k], v))
		}
	}
	if _, err := c.Commit(); err != nil {
		fail("commit", err)
	}
	committed, err := c.Committed([]kafka.TopicPartition{{Topic: topic, Partition: 0},
		{Topic: topic, Partition: 1}}, 10000)
	if err != nil {
		fail("Committed", err)
	}
	var sum int64
	for _, tp := range committed {
		if tp.Offset >= 0 {
			sum += int64(tp.Offset)
		}
	}
	if sum != int64(len(sent)) {
		fail("Committed", fmt.Errorf("sum %d, want %d: %v", sum, len(sent), committed))
	}
	c.Close()
	fmt.Printf("ok consumer group: %s read all %d records, committed %d\n", group, len(sent), sum)
	fmt.Println("PASS")
}
