#!/usr/bin/env python3
"""A real SMTP server for Reclaim's mail tests (aiosmtpd from PyPI).

Listens on 127.0.0.1 with STARTTLS (a private CA and a server certificate for 127.0.0.1 and
localhost, made at start with Debian's openssl) and AUTH PLAIN/LOGIN with one user, both
required before any mail; and on a second port with implicit TLS (TLS from the first byte)
and the same login. Every accepted message is written as a .eml file into the spool directory
(complete files only: written under another name, then renamed).

What a recipient's local part asks for:
  tempfail-*@...  451 to RCPT the first time for that address, accepted later
  bounce-*@...    550 5.1.1 mailbox unavailable to RCPT
  slowack-*@...   the message is written to the spool, then the 250 to DATA waits
                  --slowack-secs (so a test can kill the client after the server has it)

Usage:
  smtp_server.py --spool DIR --state DIR --user U --password P [--port 0] [--slowack-secs 5]
Prints one line `ready 127.0.0.1:PORT CA_FILE 127.0.0.1:TLS_PORT` on stdout once listening
(PORT speaks STARTTLS, TLS_PORT implicit TLS), and writes the same to STATE/ready. Stops on
SIGTERM or SIGINT.
"""

import argparse
import asyncio
import os
import signal
import ssl
import subprocess
import sys
import time

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


def make_certificates(state):
    """A throwaway CA and a server certificate it signs, for 127.0.0.1 and localhost."""
    ca_key, ca_pem = os.path.join(state, "ca.key"), os.path.join(state, "ca.pem")
    key, csr, pem = (os.path.join(state, n) for n in ("server.key", "server.csr", "server.pem"))
    ext = os.path.join(state, "server.ext")
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "check": True}
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-keyout", ca_key, "-out", ca_pem, "-subj", "/CN=Reclaim test mail CA",
                    "-addext", "basicConstraints=critical,CA:TRUE",
                    "-addext", "keyUsage=critical,keyCertSign,cRLSign"], **quiet)
    subprocess.run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", csr, "-subj", "/CN=127.0.0.1"], **quiet)
    with open(ext, "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\n"
                "keyUsage=critical,digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=serverAuth\n"
                "subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", ca_pem, "-CAkey", ca_key,
                    "-CAcreateserial", "-days", "2", "-out", pem, "-extfile", ext], **quiet)
    return ca_pem, pem, key


class Behaviours:
    """aiosmtpd handler: recipients by local part, and the spool."""

    def __init__(self, spool, slowack_secs):
        self.spool = spool
        self.slowack_secs = slowack_secs
        self.tempfailed = set()
        self.count = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0].lower()
        if local.startswith("bounce-"):
            return "550 5.1.1 mailbox unavailable"
        if local.startswith("tempfail-") and address.lower() not in self.tempfailed:
            self.tempfailed.add(address.lower())
            return "451 4.3.0 mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        name = "%d-%04d" % (time.time_ns(), self.count)
        head = "X-Envelope-From: <%s>\r\nX-Envelope-To: %s\r\n" % (
            envelope.mail_from, ", ".join("<%s>" % r for r in envelope.rcpt_tos))
        tmp = os.path.join(self.spool, name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(head.encode("ascii"))
            f.write(envelope.original_content or envelope.content)
        os.rename(tmp, os.path.join(self.spool, name + ".eml"))
        print("accepted %s for %s" % (name, envelope.rcpt_tos), file=sys.stderr, flush=True)
        if any(r.split("@", 1)[0].lower().startswith("slowack-") for r in envelope.rcpt_tos):
            await asyncio.sleep(self.slowack_secs)
        return "250 2.0.0 accepted"


def authenticator(user, password):
    def check(server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword)
              and auth_data.login == user.encode() and auth_data.password == password.encode())
        return AuthResult(success=ok, handled=False)
    return check


async def serve(args):
    os.makedirs(args.spool, exist_ok=True)
    os.makedirs(args.state, exist_ok=True)
    ca_pem, cert, key = make_certificates(args.state)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    handler = Behaviours(args.spool, args.slowack_secs)
    loop = asyncio.get_running_loop()

    def starttls_session():
        return SMTP(handler, hostname="mail.test", tls_context=tls, require_starttls=True,
                    auth_required=True, auth_require_tls=True,
                    authenticator=authenticator(args.user, args.password), decode_data=False)

    def implicit_tls_session():
        # The whole connection is TLS, so the login needs no STARTTLS first.
        return SMTP(handler, hostname="mail.test", auth_required=True, auth_require_tls=False,
                    authenticator=authenticator(args.user, args.password), decode_data=False)

    server = await loop.create_server(starttls_session, "127.0.0.1", args.port)
    tls_server = await loop.create_server(implicit_tls_session, "127.0.0.1", args.tls_port,
                                          ssl=tls)
    port = server.sockets[0].getsockname()[1]
    tls_port = tls_server.sockets[0].getsockname()[1]
    line = "ready 127.0.0.1:%d %s 127.0.0.1:%d" % (port, ca_pem, tls_port)
    with open(os.path.join(args.state, "ready.tmp"), "w") as f:
        f.write(line + "\n")
    os.rename(os.path.join(args.state, "ready.tmp"), os.path.join(args.state, "ready"))
    print(line, flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()
    tls_server.close()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--spool", required=True)
    p.add_argument("--state", required=True, help="certificates and the ready file go here")
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--port", type=int, default=0, help="STARTTLS port (0: any free one)")
    p.add_argument("--tls-port", type=int, default=0, help="implicit TLS port (0: any free one)")
    p.add_argument("--slowack-secs", type=float, default=5.0)
    asyncio.run(serve(p.parse_args()))


if __name__ == "__main__":
    main()
