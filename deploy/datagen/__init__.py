"""Generated input. `generator` is the public face (clickstream(), orders(), summary()); behind it
the data contract (contract), the generator's settings (config), the deterministic engine (engine),
the ways a record breaks the contract (malformed), and the two profiles (clickstream, orders).
`loadgen` produces the messages to Kafka at a pace, with progress."""
