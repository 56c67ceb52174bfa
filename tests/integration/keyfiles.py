"""Key files of encryption at rest as kyufuctl cluster init writes them
(node/keys.h, docs/encryption.md "Keys"), for clusters the test harness
builds itself: a node's KEK file (64 hex digits, 0600) and its wrapped
copy of the cluster master key (CMK), bound to the node id and the cluster
identity (SHA-256 of the CA certificate's DER).  Written here with
Python's `cryptography`, so the harness also checks the file format
against an implementation other than node/keys.c."""
import hashlib
import os
import struct

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import (
    Encoding, PublicFormat)

KEK_FILE = "kek.key"


def ca_hash(ca_pem):
    """The cluster identity: SHA-256 of the CA certificate's DER."""
    with open(ca_pem, "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    return hashlib.sha256(cert.public_bytes(Encoding.DER)).digest()


def binding(node_id, identity):
    return b"node %d\0" % node_id + identity


def _create(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def write_kek(path):
    """A new KEK file at path (never over an existing one); the key."""
    kek = os.urandom(32)
    _create(path, kek.hex().encode() + b"\n")
    return kek


def read_kek(path):
    with open(path) as f:
        return bytes.fromhex(f.read().strip())


PBKDF2_ROUNDS = 600000  # KYUFU_KEYS_PBKDF2_ROUNDS
PBKDF2_ROUNDS_MIN = 100000  # KYUFU_KEYS_PBKDF2_ROUNDS_MIN


def passphrase_kek(passphrase, salt, rounds=PBKDF2_ROUNDS):
    """The KEK of a passphrase (PBKDF2-HMAC-SHA256)."""
    return hashlib.pbkdf2_hmac("sha256", passphrase, salt, rounds, 32)


def wrap_cmk(kek, node_id, identity, cmk, salt=None, rounds=PBKDF2_ROUNDS):
    """The 92-byte CMK file (format 1) of a key-file KEK, or with salt of
    a passphrase KEK derived with that salt and rounds."""
    nonce = os.urandom(12)
    kind, rounds = (1, 0) if salt is None else (2, rounds)
    header = (b"KYUFUCMK" + struct.pack(">BBHI", 1, kind, 0, rounds) +
              (salt or bytes(16)) + nonce)
    assert len(header) == 44
    return header + AESGCM(kek).encrypt(nonce, cmk,
                                        header + binding(node_id, identity))


def write_cmk(path, kek, node_id, identity, cmk, salt=None,
              rounds=PBKDF2_ROUNDS):
    """node_id's wrapped CMK at path (its folder made 0700); salt: kek is
    a passphrase's, derived with rounds."""
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    _create(path, wrap_cmk(kek, node_id, identity, cmk, salt, rounds))


def conf(kek_path, cmk_path):
    """A kyufud.conf [keys] section."""
    return "[keys]\nkek_file = %s\ncmk_file = %s\n" % (kek_path, cmk_path)


class Handover:
    """The joiner's side of NodeInternal.FetchClusterKey (node/keys.h),
    independently of node/keys_handover.c: an ephemeral P-256 key, and
    open() of a member's answer."""

    LABEL = b"kyufu cmk handover v1"

    def __init__(self):
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.public = self.key.public_key().public_bytes(
            Encoding.X962, PublicFormat.UncompressedPoint)

    def open(self, node_id, identity, resp):
        peer = ec.EllipticCurvePublicKey.from_encoded_point(
            ec.SECP256R1(), resp.public_key)
        info = (self.LABEL + struct.pack(">Q", node_id) + self.public +
                resp.public_key)
        k = HKDF(hashes.SHA256(), 32, identity, info).derive(
            self.key.exchange(ec.ECDH(), peer))
        return AESGCM(k).decrypt(resp.nonce, resp.sealed_key, info)
