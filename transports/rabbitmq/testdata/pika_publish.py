"""Publishes CloudEvents to a RabbitMQ exchange with pika, the way a Python
service would: in binary mode (attributes as AMQP headers under a prefix
the CloudEvents AMQP binding or knative use, the data content type as the
content-type property) or in structured mode (the whole event as JSON,
content type application/cloudevents+json).

Usage: python3 pika_publish.py AMQP_URL EXCHANGE < events.json

events.json is a list of {"mode": "binary"|"structured", "prefix": ...,
"content_type": ..., "id", "type", "source", "correlationid", "data"}.
"""

import datetime
import json
import sys

import pika


def publish(channel, exchange, e):
    attributes = {
        "specversion": "1.0",
        "id": e["id"],
        "type": e["type"],
        "source": e["source"],
        "time": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "correlationid": e["correlationid"],
    }
    if e["mode"] == "structured":
        event = dict(attributes, datacontenttype="application/json", data=e["data"])
        body = json.dumps(event).encode()
        props = pika.BasicProperties(content_type=e["content_type"], delivery_mode=2)
    else:
        headers = {e["prefix"] + k: v for k, v in attributes.items()}
        body = json.dumps(e["data"]).encode()
        props = pika.BasicProperties(content_type=e["content_type"], headers=headers, delivery_mode=2)
    channel.basic_publish(exchange=exchange, routing_key="", body=body, properties=props, mandatory=True)


def main():
    url, exchange = sys.argv[1], sys.argv[2]
    events = json.load(sys.stdin)
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.confirm_delivery()  # basic_publish raises unless the broker confirms
    for e in events:
        publish(channel, exchange, e)
    connection.close()
    print("published %d" % len(events))


if __name__ == "__main__":
    main()
