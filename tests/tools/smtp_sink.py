#!/usr/bin/env python3
"""A remote SMTP server for the delivery worker's end-to-end tests, built on aiosmtpd.

Independent of our SMTP code: it stands for the Internet's MX hosts and relays. Every accepted
message becomes one JSON file in the spool folder, written atomically (temporary name, then rename)
as <n>.json, n counting from 1 in arrival order:

    mail_from ("" for the null sender <>), rcpt_tos, rcpt_options (one list per recipient),
    mail_options,
    data      the message exactly as received (dot-unstuffed), decoded as latin-1: every byte is
              the code point of the same value, so the bytes come back by encoding it as latin-1
    data_b64  the same bytes in base64, for other tools
    peer ("ip:port"), helo, tls (STARTTLS was used), auth_user (null unless authenticated)

What happens to a recipient is chosen by its local part, so that a test scripts the remote side
through the addresses it sends to:

    reject...    RCPT is answered 550 5.1.1
    tempfail...  RCPT is answered 451 4.3.0 the first --tempfail-times times for that address
                 (counted over all connections), then accepted
    datafail...  RCPT is accepted, but DATA of a transaction holding it is answered 554 5.6.0
    anything else is accepted

Prints "ready <port>" on stdout once listening (with --listen 127.0.0.1:0 the system picks the
port); logs connections and commands to stderr; exits 0 on SIGTERM or SIGINT. This is a test tool:
it trusts its command line and must never listen beyond loopback in CI.
"""

import argparse
import asyncio
import base64
import json
import logging
import os
import signal
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

log = logging.getLogger("smtp_sink")

REJECT = "550 5.1.1 No such user here"
TEMPFAIL = "451 4.3.0 Try again later"
DATAFAIL = "554 5.6.0 Content rejected"


def local_part(address):
    return address.rsplit("@", 1)[0].lower()


class Spool:
    """Numbered JSON files in a folder; continues after the highest number already there."""

    def __init__(self, folder):
        self.folder = folder
        os.makedirs(folder, exist_ok=True)
        numbers = [int(name[:-5]) for name in os.listdir(folder)
                   if name.endswith(".json") and name[:-5].isdigit()]
        self.last = max(numbers, default=0)

    def write(self, record):
        self.last += 1
        path = os.path.join(self.folder, f"{self.last}.json")
        temporary = os.path.join(self.folder, f".{self.last}.json.tmp")
        with open(temporary, "w", encoding="utf-8") as file:
            json.dump(record, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
        return self.last


class Handler:
    # No attribute may start with auth_: aiosmtpd would offer it as an AUTH mechanism.
    def __init__(self, spool, tempfail_times, advertise_auth):
        self.spool = spool
        self.tempfail_times = tempfail_times
        self.tempfails = {}  # address (lowercase) -> 451s answered so far
        self.advertise_auth = advertise_auth

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        # The five-argument hook must record the name itself.
        session.host_name = hostname
        if not self.advertise_auth:
            # aiosmtpd lists AUTH (with a callback that always fails) even when none is configured.
            responses = [line for line in responses if not line[4:].upper().startswith("AUTH")]
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = local_part(address)
        if local.startswith("reject"):
            log.info("%s RCPT %s: rejected", peer_text(session), address)
            return REJECT
        if local.startswith("tempfail"):
            key = address.lower()
            answered = self.tempfails.get(key, 0)
            if answered < self.tempfail_times:
                self.tempfails[key] = answered + 1
                log.info("%s RCPT %s: temporary failure %d of %d", peer_text(session), address,
                         answered + 1, self.tempfail_times)
                return TEMPFAIL
        envelope.rcpt_tos.append(address)
        # aiosmtpd's own rcpt_options is one flat list; keep the options of each recipient apart.
        envelope.rcpt_options.extend(rcpt_options)
        if not hasattr(envelope, "sink_rcpt_options"):
            envelope.sink_rcpt_options = []
        envelope.sink_rcpt_options.append(list(rcpt_options))
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        if any(local_part(rcpt).startswith("datafail") for rcpt in envelope.rcpt_tos):
            log.info("%s DATA rejected (a datafail recipient)", peer_text(session))
            return DATAFAIL
        data = envelope.original_content or b""
        number = self.spool.write({
            "mail_from": "" if envelope.mail_from == "<>" else envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "rcpt_options": getattr(envelope, "sink_rcpt_options", []),
            "mail_options": envelope.mail_options,
            "data": data.decode("latin-1"),
            "data_b64": base64.b64encode(data).decode("ascii"),
            "peer": peer_text(session),
            "helo": session.host_name,
            "tls": session.ssl is not None,
            # The authenticator below puts the user name into auth_data.
            "auth_user": session.auth_data if session.authenticated else None,
        })
        log.info("%s DATA accepted: %d bytes for %s, spooled as %d.json", peer_text(session),
                 len(data), ", ".join(envelope.rcpt_tos), number)
        return f"250 2.0.0 OK queued as {number}"


def peer_text(session):
    peer = session.peer
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer)


def authenticator_for(user, password):
    def authenticate(server, session, envelope, mechanism, auth_data):
        if (isinstance(auth_data, LoginPassword) and auth_data.login == user.encode()
                and auth_data.password == password.encode()):
            log.info("%s AUTH %s as %s: accepted", peer_text(session), mechanism, user)
            return AuthResult(success=True, auth_data=user)
        log.info("%s AUTH %s: bad credentials", peer_text(session), mechanism)
        return AuthResult(success=False, handled=False)
    return authenticate


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", required=True, help="IP:PORT (port 0: any free port)")
    parser.add_argument("--spool", required=True, help="folder for the accepted messages")
    parser.add_argument("--hostname", default="sink.test", help="name in the banner and EHLO")
    parser.add_argument("--tls-cert", help="PEM certificate chain; offers STARTTLS")
    parser.add_argument("--tls-key", help="PEM private key of --tls-cert")
    parser.add_argument("--auth", metavar="USER:PASSWORD",
                        help="offer AUTH PLAIN LOGIN (after STARTTLS when TLS is on) and require it")
    parser.add_argument("--tempfail-times", type=int, default=1,
                        help="451s for each tempfail... address before accepting it")
    args = parser.parse_args()
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    if args.auth is not None and ":" not in args.auth:
        parser.error("--auth takes USER:PASSWORD")
    return args


async def serve(args):
    host, _, port = args.listen.rpartition(":")
    host = host.strip("[]")
    tls_context = None
    if args.tls_cert:
        tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls_context.load_cert_chain(args.tls_cert, args.tls_key)
    handler = Handler(Spool(args.spool), args.tempfail_times, advertise_auth=args.auth is not None)
    auth = {}
    if args.auth is not None:
        user, _, password = args.auth.partition(":")
        auth = {
            "authenticator": authenticator_for(user, password),
            "auth_required": True,
            # Without TLS there is nothing to wait for: offer AUTH in plain text.
            "auth_require_tls": tls_context is not None,
        }

    loop = asyncio.get_running_loop()

    def factory():
        return SMTP(handler, hostname=args.hostname, ident="smtp_sink", tls_context=tls_context,
                    enable_SMTPUTF8=True, loop=loop, **auth)

    server = await loop.create_server(factory, host=host, port=int(port))
    bound = server.sockets[0].getsockname()[1]
    log.info("listening on %s:%d, spool %s", host, bound, args.spool)
    print(f"ready {bound}", flush=True)

    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    log.info("stopping")
    server.close()


def main():
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # aiosmtpd's own log names each command and reply per peer.
    logging.getLogger("mail.log").setLevel(logging.INFO)
    asyncio.run(serve(parse_args()))


if __name__ == "__main__":
    main()
