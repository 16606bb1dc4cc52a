"""Kafka adapters on public APIs: batch sending, taps, topics, the embedded broker."""
