#!/usr/bin/env python3
"""Signs a message with DKIM (RFC 6376) using dkimpy, a signer independent of ours.

    dkim_sign.py MESSAGE KEY.pem DOMAIN SELECTOR

MESSAGE is the message file (raw bytes, CRLF line ends); KEY.pem an RSA private key (PKCS#8 or
PKCS#1 PEM). Prints the signed message (the DKIM-Signature field in front of the message) to
stdout; exits 1 when signing fails, 2 on bad usage. relaxed/relaxed, rsa-sha256, signing From,
To, Subject, Date and Message-ID.
"""

import sys

import dkim


def main():
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    message_path, key_path, domain, selector = sys.argv[1:]
    with open(message_path, "rb") as f:
        message = f.read()
    with open(key_path, "rb") as f:
        key = f.read()
    try:
        signature = dkim.sign(
            message,
            selector.encode(),
            domain.encode(),
            key,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=[b"from", b"to", b"subject", b"date", b"message-id"],
        )
    except Exception as error:  # dkimpy raises several kinds; all mean "not signed".
        print(f"signing failed: {error}", file=sys.stderr)
        return 1
    sys.stdout.buffer.write(signature + message)
    return 0


if __name__ == "__main__":
    sys.exit(main())
