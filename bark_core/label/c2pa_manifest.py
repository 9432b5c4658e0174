"""C2PA Content Credentials: a signed manifest saying the audio was created by a trained model.

Tags can be forged by anyone; a C2PA manifest is signed with the publisher's certificate and binds
the claim to a hash of the file, so any change to the audio or to the claim shows up as invalid.
The manifest holds one ``c2pa.created`` action whose ``digitalSourceType`` is IPTC's
``trainedAlgorithmicMedia``, naming the generator (``softwareAgent``) and the model.

Signing needs the user's certificate chain and private key (PEM), from ``BARK_C2PA_CERT`` /
``BARK_C2PA_KEY`` (each a file path or the PEM text) or passed as arguments. Without them files get
no manifest, and one info line says how to add one. The official bindings (``c2pa-python``, the
``c2pa`` extra) do the work; among our formats they embed in WAV, MP3 and FLAC, not in OGG.
"""

from __future__ import annotations

import io
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import BarkError
from .xmp import IPTC_DIGITAL_SOURCE_TYPE

logger = logging.getLogger("bark_core.label")

ENV_CERT = "BARK_C2PA_CERT"
ENV_KEY = "BARK_C2PA_KEY"
ENV_TSA = "BARK_C2PA_TSA_URL"  # optional RFC 3161 time-stamp authority
C2PA_FORMATS = {"wav": "audio/wav", "mp3": "audio/mpeg", "flac": "audio/flac"}
ACTIONS_LABEL = "c2pa.actions"
_INSTALL_HINT = "pip install 'bark-stages[c2pa]' (or pip install c2pa-python)"
_told: set[str] = set()


class C2paSigningError(BarkError, ValueError):
    """C2PA signing was asked for but cannot be done as configured."""


@dataclass(frozen=True)
class C2paCredentials:
    """A PEM certificate chain (signer first) and its private key, with the signing algorithm."""

    cert_pem: bytes
    key_pem: bytes
    alg: str
    tsa_url: str | None = None

    def __repr__(self) -> str:  # never print a private key
        return f"C2paCredentials(alg={self.alg!r}, tsa_url={self.tsa_url!r})"


def _pem(value: str | bytes | os.PathLike, what: str) -> bytes:
    if isinstance(value, bytes):
        data = value
    elif isinstance(value, str) and "-----BEGIN" in value:
        data = value.encode("ascii", errors="replace")
    else:
        path = Path(os.path.expanduser(os.fspath(value)))
        if not path.is_file():
            raise C2paSigningError(f"The C2PA {what} file {path.name} does not exist; point {what} (or "
                                   f"{ENV_CERT if what == 'certificate' else ENV_KEY}) at a PEM file.")
        data = path.read_bytes()
    if b"-----BEGIN" not in data:
        raise C2paSigningError(f"The C2PA {what} is not PEM text (no -----BEGIN line); export it as PEM.")
    return data


def _algorithm(key_pem: bytes) -> str:
    """c2pa's algorithm name for a private key: es256/384/512 by curve, ps256 for RSA, ed25519."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise C2paSigningError(f"The C2PA private key cannot be read ({exc}); it must be an unencrypted PEM "
                               "key (EC P-256/P-384/P-521, RSA or Ed25519).") from None
    if isinstance(key, ec.EllipticCurvePrivateKey):
        curves = {"secp256r1": "es256", "secp384r1": "es384", "secp521r1": "es512"}
        if key.curve.name not in curves:
            raise C2paSigningError(f"C2PA cannot sign with the curve {key.curve.name}; use P-256, P-384 or P-521.")
        return curves[key.curve.name]
    if isinstance(key, rsa.RSAPrivateKey):
        return "ps256"
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "ed25519"
    raise C2paSigningError(f"C2PA cannot sign with a {type(key).__name__}; use an EC, RSA or Ed25519 key.")


def credentials(cert: str | bytes | os.PathLike | None = None,
                key: str | bytes | os.PathLike | None = None) -> C2paCredentials | None:
    """Signing credentials from the arguments, else from the environment; None when neither is set."""
    cert = cert if cert is not None else os.environ.get(ENV_CERT) or None
    key = key if key is not None else os.environ.get(ENV_KEY) or None
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        missing = ENV_CERT if cert is None else ENV_KEY
        raise C2paSigningError(f"C2PA signing needs both a certificate and a private key; {missing} (or its "
                               "argument) is not set.")
    key_pem = _pem(key, "private key")
    return C2paCredentials(_pem(cert, "certificate"), key_pem, _algorithm(key_pem),
                           os.environ.get(ENV_TSA) or None)


def _c2pa() -> Any:
    try:
        import c2pa
    except ImportError as exc:
        raise C2paSigningError(f"C2PA signing is configured but the c2pa package is missing ({exc}); "
                               f"{_INSTALL_HINT}.") from None
    return c2pa


def manifest_definition(data: dict[str, Any], fmt: str) -> dict[str, Any]:
    """The manifest for a label object: a ``c2pa.created`` action with the digital source type."""
    agent = {"name": str(data.get("generator", "bark_core")), "version": str(data.get("generator_version", ""))}
    parameters = {k: data[k] for k in ("model", "model_checksum", "voice", "seed", "text_sha256")
                  if data.get(k) is not None}
    wm = data.get("watermark") or {}
    if wm.get("scheme"):
        parameters["watermark"] = wm["scheme"]
    action = {"action": "c2pa.created", "digitalSourceType": data.get("digital_source_type",
                                                                       IPTC_DIGITAL_SOURCE_TYPE),
              "softwareAgent": agent, "parameters": parameters}
    return {
        "claim_generator_info": [agent],
        "title": f"bark_core take {data.get('take_id') or data.get('artifact_id') or ''}".strip(),
        "format": C2PA_FORMATS[fmt],
        "assertions": [{"label": ACTIONS_LABEL, "data": {"actions": [action]}}],
    }


def note_unsigned(fmt: str, creds: C2paCredentials | None) -> None:
    """The one info line per process (and reason) that says why a file has no manifest."""
    reason = "format" if creds is not None else "no-credentials"
    if reason in _told:
        return
    _told.add(reason)
    if reason == "format":
        logger.info("C2PA has no way to embed a manifest in %s files; they carry the watermark, tags and XMP "
                    "only. Export WAV, MP3 or FLAC for Content Credentials.", fmt.upper())
    else:
        logger.info("No C2PA Content Credentials: set %s and %s to your PEM certificate chain and private key "
                    "(or pass c2pa_cert= and c2pa_key=) to sign WAV, MP3 and FLAC files.", ENV_CERT, ENV_KEY)


def sign(blob: bytes, fmt: str, data: dict[str, Any], creds: C2paCredentials) -> bytes:
    """``blob`` (a finished WAV, MP3 or FLAC file) with a signed manifest embedded."""
    c2pa = _c2pa()
    mime = C2PA_FORMATS[fmt]
    try:
        signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(creds.alg, creds.cert_pem, creds.key_pem,
                                                           creds.tsa_url))
        builder = c2pa.Builder(json.dumps(manifest_definition(data, fmt)))
        out = io.BytesIO()
        builder.sign(signer, mime, io.BytesIO(blob), out)
    except c2pa.C2paError as exc:
        raise C2paSigningError(f"C2PA signing failed: {exc}. Check that the certificate chain matches the key "
                               "and is a signing certificate (not a CA).") from None
    return out.getvalue()


def read_manifest(path: str | os.PathLike, fmt: str | None = None) -> dict[str, Any] | None:
    """What c2pa's own reader says of a file's manifest; None when it has none.

    ``state`` is c2pa's validation state ("Valid", "Trusted" or "Invalid"); ``valid`` is True for
    the first two. A certificate outside c2pa's trust list still validates ("Valid"): the claim is
    intact and signed by that certificate, whose owner is for the reader to judge.
    """
    path = Path(path)
    fmt = (fmt or path.suffix.lower().lstrip(".")).replace("oga", "ogg")
    if fmt not in C2PA_FORMATS:
        return None
    try:
        import c2pa
    except ImportError:
        return {"valid": None, "state": "unchecked", "error": f"c2pa is not installed; {_INSTALL_HINT}"}
    try:
        reader = c2pa.Reader(C2PA_FORMATS[fmt], io.BytesIO(path.read_bytes()))
    except c2pa.C2paError as exc:
        if "ManifestNotFound" in type(exc).__name__ or "JUMBF" in str(exc).upper():
            return None
        return {"valid": False, "state": "Invalid", "error": str(exc)}
    state = reader.get_validation_state()
    results = reader.get_validation_results() or {}
    failures = [f.get("code") for f in (results.get("activeManifest") or {}).get("failure", [])]
    store = json.loads(reader.json())
    manifest = store.get("manifests", {}).get(store.get("active_manifest"), {})
    action = next((a for assertion in manifest.get("assertions", []) if assertion.get("label", "").startswith(
        ACTIONS_LABEL) for a in assertion.get("data", {}).get("actions", []) if a.get("action") == "c2pa.created"),
        {})
    agent = action.get("softwareAgent") or {}
    return {
        "valid": state in ("Valid", "Trusted"),
        "state": state,
        "failures": [f for f in failures if f != "signingCredential.untrusted"],
        "trusted": state == "Trusted",
        "digital_source_type": action.get("digitalSourceType"),
        "generator": agent.get("name") if isinstance(agent, dict) else agent,
        "generator_version": agent.get("version") if isinstance(agent, dict) else None,
        "model": (action.get("parameters") or {}).get("model"),
        "signer": (manifest.get("signature_info") or {}).get("issuer"),
    }
