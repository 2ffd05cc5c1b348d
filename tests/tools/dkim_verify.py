#!/usr/bin/env python3
"""Verifies a DKIM signature (RFC 6376) with dkimpy, a verifier independent of our signer.

    dkim_verify.py MESSAGE --txt sel._domainkey.example.org="v=DKIM1; k=rsa; p=..." [--txt ...]
    dkim_verify.py MESSAGE --dns 127.0.0.1:5353

MESSAGE is the message file, raw bytes as sent. The public key comes from the --txt records (name
without the trailing dot, compared case-insensitively), or from the DNS server given with --dns;
never from the system resolver. Prints "pass d=<domain> s=<selector>" and exits 0 when the
signature (the first one, or --index) verifies; prints the reason and exits 1 otherwise; exits 2
on bad usage.
"""

import argparse
import logging
import sys

import dkim


class Reasons(logging.Handler):
    """Keeps what dkimpy logs, since verify() often returns a bare False and logs why."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def txt_lookup(records):
    table = {name.lower().rstrip("."): value for name, value in records.items()}

    def lookup(name, timeout=5):
        text = name.decode("ascii", "replace") if isinstance(name, bytes) else name
        value = table.get(text.lower().rstrip("."))
        return value.encode("utf-8") if value is not None else None

    return lookup


def dns_lookup(server):
    import dns.resolver

    host, _, port = server.rpartition(":")
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [host.strip("[]")]
    resolver.port = int(port)

    def lookup(name, timeout=5):
        text = name.decode("ascii") if isinstance(name, bytes) else name
        try:
            answer = resolver.resolve(text, "TXT", lifetime=timeout)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        return b"".join(answer[0].strings)

    return lookup


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("message", help="file holding the message, raw bytes")
    parser.add_argument("--txt", action="append", default=[], metavar="NAME=VALUE",
                        help="a TXT record, e.g. sel._domainkey.example.org=v=DKIM1;...")
    parser.add_argument("--dns", metavar="IP:PORT", help="ask this DNS server instead")
    parser.add_argument("--index", type=int, default=0,
                        help="which DKIM-Signature to verify, 0 being the topmost")
    args = parser.parse_args()
    if bool(args.txt) == bool(args.dns):
        parser.error("give either --txt records or --dns")
    records = {}
    for item in args.txt:
        name, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--txt takes NAME=VALUE, not {item!r}")
        records[name] = value
    args.records = records
    return args


def main():
    args = parse_args()
    with open(args.message, "rb") as file:
        message = file.read()
    lookup = dns_lookup(args.dns) if args.dns else txt_lookup(args.records)

    logger = logging.getLogger("dkim_verify")
    logger.propagate = False
    reasons = Reasons()
    logger.addHandler(reasons)
    verifier = dkim.DKIM(message, logger=logger)
    try:
        valid = verifier.verify(idx=args.index, dnsfunc=lookup)
    except dkim.DKIMException as error:
        valid = False
        reasons.lines.append(f"{type(error).__name__}: {error}")
    domain = (verifier.domain or b"").decode("ascii", "replace")
    selector = (verifier.selector or b"").decode("ascii", "replace") if verifier.domain else ""
    if valid:
        print(f"pass d={domain} s={selector}")
        return 0
    signatures = sum(1 for name, _ in verifier.headers if name.lower() == b"dkim-signature")
    if signatures <= args.index:
        reason = f"no DKIM-Signature number {args.index} (the message has {signatures})"
    elif reasons.lines:
        reason = "; ".join(reasons.lines)
    else:
        reason = "signature does not verify"
    print(f"fail d={domain} s={selector}: {reason}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
