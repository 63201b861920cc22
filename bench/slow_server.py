#!/usr/bin/env python3
"""A FHIR-like HTTP/1.1 server on 127.0.0.1 that answers every request after a fixed
delay (50 ms by default), for the latency-bound benchmark. Standard library only.

    slow_server.py PORT_FILE [DELAY_MS]

Listens on a free loopback port, writes the port to PORT_FILE, serves until SIGTERM
or SIGINT. Keep-alive, any number of concurrent connections (asyncio): the delay is a
sleep, so 32 connections in flight cost it next to no CPU. Routes as the nginx config
of bench/run.sh: GET /metadata, GET /Patient/{id}, POST /Patient (201 + Location).
"""

import asyncio
import itertools
import json
import os
import signal
import sys

PATIENT = json.dumps(
    {
        "resourceType": "Patient",
        "id": "p1",
        "meta": {"versionId": "1", "lastUpdated": "2024-01-01T00:00:00Z"},
        "active": True,
        "name": [{"use": "official", "family": "Bench", "given": ["Ann", "Marie"]}],
        "gender": "female",
        "birthDate": "1970-01-01",
    }
).encode()
METADATA = json.dumps(
    {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "kind": "instance",
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "rest": [{"mode": "server", "resource": [{"type": "Patient", "interaction": [{"code": "read"}, {"code": "create"}]}]}],
    }
).encode()
MAX_HEADER = 64 * 1024
ids = itertools.count(1)


def response(status, reason, body, extra=b""):
    return (
        b"HTTP/1.1 %d %s\r\nContent-Type: application/fhir+json\r\nContent-Length: %d\r\n%s\r\n"
        % (status, reason, len(body), extra)
    ) + body


async def handle(reader, writer, delay):
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                return
            lines = head.decode("latin-1").split("\r\n")
            try:
                method, target, _version = lines[0].split(" ", 2)
            except ValueError:
                return
            length = 0
            close = False
            for line in lines[1:]:
                name, _, value = line.partition(":")
                name = name.strip().lower()
                if name == "content-length":
                    length = int(value.strip() or 0)
                elif name == "connection" and value.strip().lower() == "close":
                    close = True
            if length:
                await reader.readexactly(length)
            await asyncio.sleep(delay)
            path = target.split("?", 1)[0]
            if method == "GET" and path == "/metadata":
                out = response(200, b"OK", METADATA)
            elif method == "GET" and path.startswith("/Patient/"):
                out = response(200, b"OK", PATIENT)
            elif method == "POST" and path == "/Patient":
                n = next(ids)
                body = b'{"resourceType":"Patient","id":"n%d"}' % n
                port = writer.get_extra_info("sockname")[1]
                loc = b"Location: http://127.0.0.1:%d/Patient/n%d/_history/1\r\n" % (port, n)
                out = response(201, b"Created", body, loc)
            else:
                out = response(404, b"Not Found", b'{"resourceType":"OperationOutcome"}')
            writer.write(out)
            await writer.drain()
            if close:
                return
    except ConnectionError:
        pass
    finally:
        writer.close()


async def main():
    port_file = sys.argv[1]
    delay = (float(sys.argv[2]) if len(sys.argv) > 2 else 50.0) / 1000.0
    server = await asyncio.start_server(
        lambda r, w: handle(r, w, delay), "127.0.0.1", 0, backlog=256, limit=MAX_HEADER
    )
    port = server.sockets[0].getsockname()[1]
    tmp = port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{port}\n")
    os.rename(tmp, port_file)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: slow_server.py PORT_FILE [DELAY_MS]")
    asyncio.run(main())
