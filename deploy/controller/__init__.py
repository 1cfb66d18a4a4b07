"""The controller core: observe (Flink, Kafka) → decide (pure) → act (Flink REST)."""
