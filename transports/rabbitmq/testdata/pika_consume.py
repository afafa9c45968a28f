"""Consumes COUNT messages from a RabbitMQ fanout exchange with pika and
prints each, one JSON object a line, as a Python CloudEvents consumer reads
it by the AMQP binding: the attributes from the headers under the binding's
prefix (cloudEvents: or cloudEvents_), the data content type from the
content-type property, the data from the body; with the raw headers and
properties beside them.

Usage: python3 pika_consume.py AMQP_URL EXCHANGE COUNT

It prints "ready" once its queue is bound, so that the caller publishes
only then.
"""

import json
import sys

import pika

PREFIXES = ("cloudEvents:", "cloudEvents_")


def text(v):
    return v.decode() if isinstance(v, bytes) else v


def main():
    url, exchange, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.exchange_declare(exchange=exchange, exchange_type="fanout", durable=True)
    queue = channel.queue_declare(queue="", exclusive=True).method.queue
    channel.queue_bind(queue=queue, exchange=exchange)
    print("ready", flush=True)
    seen = 0
    for method, props, body in channel.consume(queue, auto_ack=False, inactivity_timeout=30):
        if method is None:
            print(json.dumps({"error": "no message within 30s"}), flush=True)
            break
        headers = {k: text(v) for k, v in (props.headers or {}).items()}
        event = {}
        for k, v in headers.items():
            for p in PREFIXES:
                if k.startswith(p):
                    event[k[len(p):]] = v
        event["datacontenttype"] = props.content_type
        event["data"] = json.loads(body)
        print(json.dumps({
            "event": event,
            "headers": headers,
            "content_type": props.content_type,
            "message_id": props.message_id,
            "delivery_mode": props.delivery_mode,
        }), flush=True)
        channel.basic_ack(method.delivery_tag)
        seen += 1
        if seen == count:
            break
    channel.cancel()
    connection.close()


if __name__ == "__main__":
    main()
