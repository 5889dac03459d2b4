"""confluent-kafka-python (librdkafka) as an application behind its sidecar, for TlsBrokersTest.

usage: confluent_clients.py roundtrip TOPIC VALUE...   produce the values, read the topic back, print the values (JSON)
       confluent_clients.py metadata                   ask for metadata, print the errors the client reported (JSON)
The client settings (bootstrap, security protocol, SASL credentials, CA) come as JSON in KAFKA_CONF, not argv.
"""
import json
import os
import sys
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition


def roundtrip(conf, topic, values):
    failures = []

    def delivered(err, _msg):
        if err is not None:
            failures.append(str(err))

    producer = Producer(conf)
    for value in values:
        producer.produce(topic, value.encode(), on_delivery=delivered)
    if producer.flush(30) or failures:
        sys.exit("produce failed: %s" % failures)
    consumer = Consumer({**conf, "group.id": "py-" + topic, "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    got = []
    deadline = time.monotonic() + 30
    while len(got) < len(values) and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        if msg.error():
            raise KafkaException(msg.error())
        got.append(msg.value().decode())
    consumer.close()
    print(json.dumps(got))


def metadata(conf):
    errors = []
    producer = Producer({**conf, "error_cb": lambda e: errors.append(e.str())})
    try:
        producer.list_topics(timeout=5)
    except KafkaException as e:
        errors.append(str(e))
    print(json.dumps(errors))


if __name__ == "__main__":
    settings = json.loads(os.environ["KAFKA_CONF"])
    if sys.argv[1] == "roundtrip":
        roundtrip(settings, sys.argv[2], sys.argv[3:])
    elif sys.argv[1] == "metadata":
        metadata(settings)
    else:
        sys.exit("unknown mode " + sys.argv[1])
