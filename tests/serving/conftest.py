"""Serving fixtures: every zoo model exported once, one server over them, small extras.

Servers start on free loopback ports and stop in the fixtures' teardown.
"""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

import pytest

from tests.serving.helpers import (
    SYNTHETIC_SPEC,
    ZOO_MAX_MESSAGE_BYTES,
    ZOO_MODELS,
    Reference,
    build_tf1_model,
    build_zoo_model,
    export_zoo_model,
    saved_model_reference,
)
from tfzoo.export import export_saved_model
from tfzoo.serving import BatchingOptions, ModelServer, ServerOptions


@pytest.fixture(scope="session")
def zoo_models(tmp_path_factory) -> tuple[Path, dict[str, Reference]]:
    """Every zoo model (`ZOO_MODELS`) exported by its exporter into one base path, with its
    exported signatures called in this process as the reference."""
    base = tmp_path_factory.mktemp("savedmodels")
    references = {name: saved_model_reference(export_zoo_model(name, base)) for name in ZOO_MODELS}
    return base, references


def _start_server(base: Path) -> ModelServer:
    """A server (gRPC + REST, batching on) over the models under `base`; 1 MiB message limit."""
    options = ServerOptions(
        model_base_path=base,
        port=0,
        rest_port=0,
        poll_seconds=0,
        num_threads=8,
        max_message_bytes=ZOO_MAX_MESSAGE_BYTES,
        batching=BatchingOptions(max_batch_size=32, batch_timeout_micros=2000),
    )
    return ModelServer(options).start()


@pytest.fixture(scope="session")
def zoo_server(zoo_models):
    """One server over every zoo model."""
    server = _start_server(zoo_models[0])
    yield server
    server.stop()


@pytest.fixture(scope="session")
def ranker_server(tmp_path_factory):
    """The same server over one exported ranker, `mmoe`: what the error tests need, built
    in seconds instead of the whole zoo."""
    base = tmp_path_factory.mktemp("ranker_models")
    export_zoo_model("mmoe", base)
    server = _start_server(base)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def small_models(tmp_path_factory) -> Path:
    """A base path with one tiny ranker (`ranker`) and a TF1 model (`half_plus_two`), no config."""
    base = tmp_path_factory.mktemp("small_models")
    model = build_zoo_model("shared_bottom").model
    export_saved_model(model, SYNTHETIC_SPEC, base, "ranker", register=False)
    build_tf1_model(base / "half_plus_two" / "1")
    return base


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 / localhost and its key (PEM files)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory = tmp_path_factory.mktemp("tls")
    cert, key_file = directory / "server.crt", directory / "server.key"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert, key_file
