"""The local stack: a Kafka broker and a Flink session cluster, run as supervised processes."""
