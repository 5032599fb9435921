"""The online services: collector (Prometheus -> Kafka), predictor (Kafka -> status.forecast),
the record schema, histories, offsets, settings, their /metrics and the benchmark."""
