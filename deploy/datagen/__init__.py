"""Generated input: the clickstream and orders generator with its event contract (generator), and
producing it to Kafka at a pace with progress (loadgen)."""
