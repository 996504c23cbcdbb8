// kafkago-check drives Debian's segmentio/kafka-go (0.2.1: CreateTopics v0, Produce v2, Fetch
// v2, a consumer group on JoinGroup v1 / SyncGroup v0 / OffsetCommit v2) against a broker: it
// creates a topic, writes records with each codec through a Writer, reads them all back through
// a Reader in a consumer group (which commits each message), then checks that a second Reader in
// the same group starts after the commits. One line per step; non-zero exit at the first failure.
//
// Usage: kafkago-check -broker host:port -topic name
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	kafka "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/gzip"
	"github.com/segmentio/kafka-go/lz4"
	"github.com/segmentio/kafka-go/snappy"
)

const perCodec = 10

func fail(step string, err error) {
	fmt.Printf("FAIL %s: %v\n", step, err)
	os.Exit(1)
}

func main() {
	broker := flag.String("broker", "127.0.0.1:9092", "a broker address")
	topic := flag.String("topic", "kafkago-check", "topic to create and use")
	flag.Parse()

	conn, err := kafka.Dial("tcp", *broker)
	if err != nil {
		fail("dial", err)
	}
	if err := conn.CreateTopics(kafka.TopicConfig{Topic: *topic, NumPartitions: 2, ReplicationFactor: 1}); err != nil {
		fail("CreateTopics", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		parts, err := conn.ReadPartitions(*topic)
		if err == nil && len(parts) == 2 {
			break
		}
		if time.Now().After(deadline) {
			fail("ReadPartitions", fmt.Errorf("%v (%d partitions)", err, len(parts)))
		}
		time.Sleep(100 * time.Millisecond)
	}
	conn.Close()
	fmt.Printf("ok CreateTopics: %s with 2 partitions\n", *topic)

	codecs := map[string]kafka.CompressionCodec{"none": nil, "gzip": gzip.NewCompressionCodec(),
		"snappy": snappy.NewCompressionCodec(), "lz4": lz4.NewCompressionCodec()}
	sent := map[string]string{}
	for name, codec := range codecs {
		w := kafka.NewWriter(kafka.WriterConfig{Brokers: []string{*broker}, Topic: *topic,
			Balancer: &kafka.Hash{}, CompressionCodec: codec, BatchTimeout: 10 * time.Millisecond})
		var msgs []kafka.Message
		for i := 0; i < perCodec; i++ {
			k := fmt.Sprintf("%s-key-%d", name, i)
			v := fmt.Sprintf("%s-value-%d-%s", name, i, strings.Repeat("y", 40))
			sent[k] = v
			msgs = append(msgs, kafka.Message{Key: []byte(k), Value: []byte(v)})
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			fail("write "+name, err)
		}
		cancel()
		w.Close()
		fmt.Printf("ok Writer: %d records with codec %s\n", perCodec, name)
	}

	group := "kafkago-" + *topic
	newReader := func() *kafka.Reader {
		return kafka.NewReader(kafka.ReaderConfig{Brokers: []string{*broker}, GroupID: group,
			Topic: *topic, MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 200 * time.Millisecond,
			HeartbeatInterval: 500 * time.Millisecond, SessionTimeout: 10 * time.Second})
	}
	r := newReader()
	seen := map[string]string{}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	for len(seen) < len(sent) {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			fail("Reader", fmt.Errorf("after %d of %d records: %v", len(seen), len(sent), err))
		}
		seen[string(m.Key)] = string(m.Value)
	}
	cancel()
	r.Close()
	for k, v := range sent {
		if seen[k] != v {
			fail("Reader", fmt.Errorf("key %s: got %q, sent %q", k, seen[k], v))
		}
	}
	fmt.Printf("ok Reader: group %s read all %d records\n", group, len(sent))

	// Everything was committed: a new member of the group finds nothing until a new record.
	w := kafka.NewWriter(kafka.WriterConfig{Brokers: []string{*broker}, Topic: *topic,
		Balancer: &kafka.Hash{}, BatchTimeout: 10 * time.Millisecond})
	ctx, cancel = context.WithTimeout(context.Background(), 60*time.Second)
	if err := w.WriteMessages(ctx, kafka.Message{Key: []byte("after"), Value: []byte("commit")}); err != nil {
		fail("write after", err)
	}
	w.Close()
	r = newReader()
	m, err := r.ReadMessage(ctx)
	cancel()
	if err != nil {
		fail("Reader after commit", err)
	}
	if string(m.Key) != "after" {
		fail("Reader after commit", fmt.Errorf("first record %q: the commits were not kept", m.Key))
	}
	r.Close()
	fmt.Println("ok Reader after commit: resumed after the committed offsets")
	fmt.Println("PASS")
}
