"""moto server for the local stack, with KMS keys that survive a restart.

moto gives every key a random id and random material, so tokens encrypted before a restart
could not be decrypted after it, while the local database keeps them. Here both are derived
from a seed file (git-ignored, created once), so the n-th key created after each start is
the same key. Local use only: real deployments use AWS KMS.

Usage: python moto_local.py SEED_FILE [-H HOST] [-p PORT]
"""

import hashlib
import hmac
import itertools
import os
import sys
import uuid

import argparse

import waitress
from moto.kms import models
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app


def load_seed(path):
    if not os.path.exists(path):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(os.urandom(32))
    with open(path, "rb") as f:
        return f.read()


def patch(seed):
    counter = itertools.count()

    def key_id(multi_region=False):
        raw = hmac.new(seed, b"key-id:%d" % next(counter), hashlib.sha256).digest()[:16]
        kid = str(uuid.UUID(bytes=raw, version=4))
        return "mrk-" + kid.replace("-", "") if multi_region else kid

    original_init = models.Key.__init__

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self.key_material = hmac.new(seed, b"material:" + self.id.encode(), hashlib.sha256).digest()

    models.generate_key_id = key_id
    models.Key.__init__ = init


def serve(argv):
    """moto's application on waitress rather than moto's own werkzeug server: werkzeug closes
    every connection after one response, so each SQS or KMS call opened a new one (three
    TCP connections per answered message in the load bench), where AWS keeps them alive."""
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    args = parser.parse_args(argv)
    # moto writes queue URLs with this port.
    os.environ.setdefault("MOTO_PORT", str(args.port))
    waitress.serve(
        DomainDispatcherApplication(create_backend_app),
        host=args.host,
        port=args.port,
        threads=16,
        connection_limit=1000,
        channel_timeout=120,
        _quiet=True,
    )


if __name__ == "__main__":
    patch(load_seed(sys.argv[1]))
    serve(sys.argv[2:])
